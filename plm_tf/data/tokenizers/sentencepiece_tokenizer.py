"""SentencePiece tokenizer (ALBERT) on tensorflow_text.SentencepieceTokenizer.

Follows google-research/albert `tokenization.FullTokenizer` with a SentencePiece model: the text first
goes through ALBERT's `preprocess_text` (collapse whitespace, `` and '' -> ", NFKD and drop combining
marks, lowercase when `lower_case`), then SentencePiece encodes it. Not reproduced: ALBERT's
`encode_pieces` re-split of pieces such as "▁1," (digit followed by a comma), which changes a few ids
around numbers with commas.
"""
import hashlib
import unicodedata

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops import sentencepiece_tokenizer as _tf_text_sp

from plm_tf.data.tokenizers import common

SENTENCEPIECE_SPECIALS = {"pad": "<pad>", "unk": "<unk>", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
_WS = r"[\t\n\x0B\f\r\x{85}\p{Z}]"


def albert_preprocess_text(text, lower_case=True):
    """Python ALBERT `preprocess_text` (google-research/albert tokenization.py, keep_accents=False).

    The reference for `albert_preprocess` and the text normalisation used to train the SentencePiece
    model in scripts/build_vocab.py. str -> str.
    """
    text = " ".join(text.strip().split())
    text = text.replace("``", '"').replace("''", '"')
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.lower() if lower_case else text


def albert_preprocess(texts, lower_case=True):
    """In-graph ALBERT `preprocess_text` (keep_accents=False). tf.string [N] -> tf.string [N].

    Also replaces NUL by U+E000 (private use): tensorflow_text's SentencePiece op stops reading at a NUL
    byte, while the sentencepiece library keeps NUL as an unknown character (<unk>); U+E000 is kept by
    the NFKC normaliser and is <unk> too unless the model has a piece for it.
    """
    texts = tf.strings.regex_replace(texts, r"\x00", "\uE000")
    texts = tf.strings.regex_replace(texts, _WS + "+", " ")
    texts = tf.strings.strip(texts)
    texts = tf.strings.regex_replace(texts, "``|''", '"')
    texts = tf_text.normalize_utf8(texts, "NFKD")
    texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
    if lower_case:
        texts = tf.strings.lower(texts, encoding="utf-8")
    return texts


class _NamedSentencepieceModel(_tf_text_sp._SentencepieceModelResource):
    """tensorflow_text's model resource, created under a shared_name derived from the model bytes.

    tf-text 2.21 creates the resource with an empty shared_name, which makes it private to the eager
    kernel: when the kernel cache is cleared (tf.test.TestCase does so between tests) the resource is
    deleted and every later call fails with "Resource .../_0_SentencepieceOp ... does not exist". A
    named resource lives in the resource manager; equal names mean equal model bytes, so sharing is safe.
    """

    def __init__(self, model, name):
        self._shared_name = "plm_tf_sentencepiece_" + hashlib.sha256(model).hexdigest()
        super().__init__(model, name)

    def _create_resource(self):
        with tf.name_scope(self._name or "SentenceTokenizerInitializer"):
            return _tf_text_sp.gen_sentencepiece_tokenizer.sentencepiece_op(
                model=self._model, shared_name=self._shared_name)


def read_sentencepiece_model(path):
    """Returns (model bytes, list of pieces by id); clear errors for a missing or malformed model."""
    import sentencepiece as spm  # install dependency; used only at load time, never in the graph

    path = common.check_exists(path, "SentencePiece model")
    try:
        with open(path, "rb") as f:
            model = f.read()
        sp = spm.SentencePieceProcessor(model_proto=model)
    except (OSError, RuntimeError, TypeError) as e:
        raise common.TokenizerError(f"{path} is not a SentencePiece model: {e}") from None
    pieces = [sp.IdToPiece(i) for i in range(sp.GetPieceSize())]
    if not pieces:
        raise common.TokenizerError(f"{path} is not a SentencePiece model: it has no pieces")
    return model, pieces


class SentencePieceTokenizer(common.Tokenizer):
    """In-graph ALBERT SentencePiece tokenizer.

    Args:
      model_path: a SentencePiece `.model` file containing <pad> <unk> [CLS] [SEP] [MASK].
      lower_case: ALBERT's do_lower_case (default True). Accents are stripped either way, as ALBERT.

    The model bytes live inside the tf-text op (so a SavedModel needs no file); the file is also
    tracked as a `tf.saved_model.Asset` so exports carry it.
    """

    kind = "sentencepiece"

    def __init__(self, model_path, lower_case=True, name=None):
        super().__init__(name=name)
        model, pieces = read_sentencepiece_model(model_path)
        piece_ids = {p: i for i, p in enumerate(pieces)}
        ids = common.require_specials(piece_ids, SENTENCEPIECE_SPECIALS, model_path)
        self.vocab_path = str(model_path)
        self.lower_case = bool(lower_case)
        self.vocab_asset = tf.saved_model.Asset(self.vocab_path)
        self._sp = tf_text.SentencepieceTokenizer(model=model, out_type=tf.int32)
        self._sp._model_resource = _NamedSentencepieceModel(model, None)  # see _NamedSentencepieceModel
        self._init_common(pieces, ids, [p.startswith("\u2581") for p in pieces])

    def _tokenize_batch(self, texts):
        return self._sp.tokenize(albert_preprocess(texts, self.lower_case))

    def _detokenize_ids(self, ids):
        return self._sp.detokenize(ids)
