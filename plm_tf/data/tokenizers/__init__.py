"""In-graph tokenizers: WordPiece (BERT/ELECTRA), SentencePiece (ALBERT), byte-level BPE (RoBERTa).

    tok = load_tokenizer("bpe", "plm_tf/assets/bpe")
    ids = tok.tokenize(tf.constant(["Hello world"]))   # tf.RaggedTensor int32 [1, None]

All three are `tf.Module`s with the interface of `common.Tokenizer`: `kind`, `vocab_size`, `pad_id`,
`unk_id`, `cls_id`, `sep_id`, `mask_id`, `special_ids`, `tokenize`, `word_start`, `id_to_token`,
`is_special`, `detokenize`. Special ids are looked up by token string:

    kind           pad     unk     cls     sep     mask
    wordpiece      [PAD]   [UNK]   [CLS]   [SEP]   [MASK]     (google-research/bert, electra)
    sentencepiece  <pad>   <unk>   [CLS]   [SEP]   [MASK]     (google-research/albert)
    bpe            <pad>   <unk>   <s>     </s>    <mask>     (fairseq RoBERTa)

Text that is not valid UTF-8 is not an error: each undecodable byte sequence becomes U+FFFD before
tokenization (`clean_utf8`).
"""
from plm_tf.data.tokenizers.byte_bpe import ByteLevelBPETokenizer, bytes_to_unicode, pretokenize
from plm_tf.data.tokenizers.common import Tokenizer, TokenizerError, VocabNotFoundError, clean_utf8
from plm_tf.data.tokenizers.sentencepiece_tokenizer import (
    SentencePieceTokenizer, albert_preprocess, albert_preprocess_text)
from plm_tf.data.tokenizers.wordpiece import WordPieceTokenizer

KINDS = ("wordpiece", "sentencepiece", "bpe")


def load_tokenizer(kind, vocab_path, lower_case=None):
    """Builds the tokenizer of `kind` from its vocabulary files.

    Args:
      kind: "wordpiece" (vocab.txt), "sentencepiece" (.model) or "bpe" (a directory with vocab.json and
        merges.txt, or the vocab.json path with merges.txt beside it).
      vocab_path: str or os.PathLike.
      lower_case: WordPiece / SentencePiece only; None means the uncased default (True). Byte-level BPE
        never changes case; passing True for it is an error.
    Returns:
      A `Tokenizer` (tf.Module).
    Raises:
      TokenizerError: unknown kind, bad option, malformed vocabulary or missing special tokens.
      VocabNotFoundError (also a FileNotFoundError): the vocabulary path does not exist.
    """
    if kind not in KINDS:
        raise TokenizerError(f"unknown tokenizer kind {kind!r}; expected one of {', '.join(KINDS)}")
    if vocab_path is None:
        raise TokenizerError(f"a vocabulary path is required for the {kind} tokenizer")
    if kind == "wordpiece":
        return WordPieceTokenizer(vocab_path, lower_case=True if lower_case is None else lower_case)
    if kind == "sentencepiece":
        return SentencePieceTokenizer(vocab_path, lower_case=True if lower_case is None else lower_case)
    if lower_case:
        raise TokenizerError(
            "the byte-level BPE tokenizer is case-sensitive; lower_case must be None or False")
    return ByteLevelBPETokenizer(vocab_path)


__all__ = [
    "KINDS", "load_tokenizer", "Tokenizer", "TokenizerError", "VocabNotFoundError", "clean_utf8",
    "WordPieceTokenizer", "SentencePieceTokenizer", "ByteLevelBPETokenizer", "albert_preprocess",
    "albert_preprocess_text",
    "bytes_to_unicode", "pretokenize",
]
