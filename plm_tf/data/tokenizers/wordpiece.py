"""WordPiece tokenizer (BERT / ELECTRA) on tensorflow_text.BertTokenizer.

Follows google-research/bert `tokenization.FullTokenizer`: BasicTokenizer (uncased: lowercase, NFD and
strip accents; split on whitespace, punctuation and CJK ideographs) then greedy longest-match-first
WordPiece with "##" continuation pieces and [UNK] for a word that cannot be covered (tf-text's limit is
100 bytes per word where BERT's is 100 characters).
"""
import tensorflow as tf
import tensorflow_text as tf_text

from plm_tf.data.tokenizers import common

# google-research/bert `_clean_text` drops NUL, U+FFFD and control characters (category C*) except
# tab, newline and carriage return. (Unassigned code points, also dropped by BERT, are kept here.)
_BERT_DROPPED = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\x{FFFD}]"


def bert_normalize(texts, lower_case=True):
    """google-research/bert BasicTokenizer normalisation. tf.string [N] -> tf.string [N].

    Drops the characters BERT's `_clean_text` drops and turns its whitespace (tab, CR, LF, Zs) into
    spaces; when `lower_case`, lowercases (full Unicode, as
    Python's str.lower), applies NFD and removes nonspacing marks (`_run_strip_accents`).
    tensorflow_text's own lower_case option case-folds with NFKC instead (ß -> ss, ﬁ -> fi), which BERT
    does not, so plm_tf normalises here and runs BertTokenizer with lower_case=False.
    """
    texts = tf.strings.regex_replace(texts, _BERT_DROPPED, "")
    texts = tf.strings.regex_replace(texts, r"[\t\n\r\p{Zs}]", " ")  # BERT `_is_whitespace`
    if lower_case:
        texts = tf.strings.lower(texts, encoding="utf-8")
        texts = tf_text.normalize_utf8(texts, "NFD")
        texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
    return texts


WORDPIECE_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}


def read_wordpiece_vocab(path):
    """Reads a BERT vocab.txt (one token per line, id = line number) into a python list.

    Raises:
      VocabNotFoundError: the file does not exist.
      TokenizerError: not UTF-8, empty, an empty line, or a token listed twice.
    """
    path = common.check_exists(path, "WordPiece vocabulary")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (UnicodeDecodeError, IsADirectoryError) as e:
        raise common.TokenizerError(f"WordPiece vocabulary {path} is not a UTF-8 text file: {e}") from None
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    tokens = [t[:-1] if t.endswith("\r") else t for t in tokens]
    if not tokens:
        raise common.TokenizerError(f"WordPiece vocabulary {path} is empty")
    seen = {}
    for i, tok in enumerate(tokens):
        if tok == "":
            raise common.TokenizerError(f"WordPiece vocabulary {path} has an empty line at line {i + 1}")
        if tok in seen:
            raise common.TokenizerError(
                f"WordPiece vocabulary {path} lists {tok!r} twice (lines {seen[tok] + 1} and {i + 1})")
        seen[tok] = i
    return tokens


class WordPieceTokenizer(common.Tokenizer):
    """In-graph BERT WordPiece tokenizer; the vocab file becomes a SavedModel asset.

    Args:
      vocab_path: BERT-format vocab.txt containing [PAD] [UNK] [CLS] [SEP] [MASK] (any positions).
      lower_case: True (default) for uncased BERT/ELECTRA normalisation (lowercase + strip accents),
        False for cased models.

    Example:
      >>> tok = WordPieceTokenizer(default_vocab_path("wordpiece"))
      >>> tok.tokenize(["Hello, world!"])  # RaggedTensor [1, 4]: hello , world !
    """

    kind = "wordpiece"

    def __init__(self, vocab_path, lower_case=True, name=None):
        super().__init__(name=name)
        tokens = read_wordpiece_vocab(vocab_path)
        token_to_id = {t: i for i, t in enumerate(tokens)}
        ids = common.require_specials(token_to_id, WORDPIECE_SPECIALS, vocab_path)
        self.vocab_path = str(vocab_path)
        self.lower_case = bool(lower_case)
        # TextFileIdTableInitializer inside BertTokenizer tracks the vocab file as an asset.
        self._bert = tf_text.BertTokenizer(
            self.vocab_path, token_out_type=tf.int64, unknown_token="[UNK]", lower_case=False)
        self._init_common(tokens, ids, [not t.startswith("##") for t in tokens])

    def _tokenize_batch(self, texts):
        ids = self._bert.tokenize(bert_normalize(texts, self.lower_case))  # [N, words, pieces]
        return tf.cast(ids.merge_dims(1, 2), tf.int32)

    def _detokenize_ids(self, ids):
        words = self._bert.detokenize(tf.cast(ids, tf.int64))  # [N, words]: pieces joined, "##" removed
        return tf.strings.reduce_join(words, axis=-1, separator=" ")
