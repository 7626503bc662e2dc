"""Raw text → encoder features, in graph: the one path used for training, evaluation and the exported model.

    encode_texts(tokenizer, text_a, text_b=None, seq_len=128)
        → {"input_ids", "input_mask", "segment_ids"} int32 [N, seq_len]

Layouts (the tokenizer's `cls_id` / `sep_id` are `[CLS]`/`[SEP]` or RoBERTa's `<s>`/`</s>`):
- WordPiece / SentencePiece (BERT, ALBERT, ELECTRA): `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`, segment ids
  0 up to and including the first `[SEP]`, 1 after (google-research/bert `run_classifier.convert_single_example`).
- Byte-level BPE (RoBERTa): `<s> A </s>` and `<s> A </s></s> B </s>`, segment ids all 0 (fairseq
  `sentence_prediction` task; RoBERTa has a single token type).

Truncation is google-research/bert's `_truncate_seq_pair`: while the pair is too long, drop the last token of
the longer text (of B on ties). Its closed form, used here so it vectorises: with budget m and lengths
(a, b), if a + b > m then the shorter keeps its length s when s ≤ ⌊m/2⌋ and the longer gets m − s;
otherwise A keeps ⌈m/2⌉ and B ⌊m/2⌋.
"""
import numpy as np
import tensorflow as tf


def special_token_count(kind, is_pair):
    """Special tokens added around the texts: 2 single, 3 pairs (4 for RoBERTa's `</s></s>`)."""
    if not is_pair:
        return 2
    return 4 if kind == "bpe" else 3


def truncated_pair_lengths(len_a, len_b, budget):
    """Lengths kept by BERT's `_truncate_seq_pair` (see module docstring); int tensors [N]."""
    budget = tf.cast(budget, len_a.dtype)
    half_down = budget // 2
    half_up = budget - half_down
    shorter = tf.minimum(len_a, len_b)
    fits = len_a + len_b <= budget
    a_shorter = len_a <= len_b
    keep_shorter = shorter <= half_down
    new_a = tf.where(
        fits, len_a,
        tf.where(keep_shorter, tf.where(a_shorter, len_a, budget - len_b), half_up))
    new_b = tf.where(
        fits, len_b,
        tf.where(keep_shorter, tf.where(a_shorter, budget - len_a, len_b), half_down))
    return new_a, new_b


def _truncate(ragged, lengths):
    positions = tf.ragged.range(ragged.row_lengths())
    return tf.ragged.boolean_mask(ragged, positions < tf.expand_dims(lengths, 1))


def encode_texts(tokenizer, text_a, text_b=None, seq_len=128):
    """Tokenizes, truncates, adds special tokens and pads to `seq_len`.

    Args:
        tokenizer: a `plm_tf.data.tokenizers` tokenizer (`kind`, `cls_id`, `sep_id`, `pad_id`, `tokenize`).
        text_a: tf.string [N].
        text_b: tf.string [N] or None for single-text tasks.
        seq_len: output length T, special tokens included.

    Returns:
        dict of int32 [N, T]: "input_ids" (padded with `pad_id`), "input_mask" (1 = real token),
        "segment_ids".
    """
    is_pair = text_b is not None
    budget = seq_len - special_token_count(tokenizer.kind, is_pair)
    if budget < (2 if is_pair else 1):
        raise ValueError(f"seq_len={seq_len} leaves no room for the text after the special tokens.")
    tokens_a = tf.cast(tokenizer.tokenize(text_a), tf.int32)
    batch = tokens_a.nrows()
    cls = tf.fill([batch, 1], tf.constant(tokenizer.cls_id, tf.int32))
    sep = tf.fill([batch, 1], tf.constant(tokenizer.sep_id, tf.int32))
    cls, sep = tf.RaggedTensor.from_tensor(cls), tf.RaggedTensor.from_tensor(sep)
    if is_pair:
        tokens_b = tf.cast(tokenizer.tokenize(text_b), tf.int32)
        keep_a, keep_b = truncated_pair_lengths(tokens_a.row_lengths(), tokens_b.row_lengths(), budget)
        tokens_a, tokens_b = _truncate(tokens_a, keep_a), _truncate(tokens_b, keep_b)
        first = [cls, tokens_a, sep] + ([sep] if tokenizer.kind == "bpe" else [])
        second = [tokens_b, sep]
    else:
        tokens_a = _truncate(tokens_a, tf.fill([batch], tf.cast(budget, tf.int64)))
        first, second = [cls, tokens_a, sep], []
    ids = tf.concat(first + second, axis=1)
    first_len = tf.concat(first, axis=1).row_lengths()
    positions = tf.ragged.range(ids.row_lengths())
    if is_pair and tokenizer.kind != "bpe":
        segments = tf.cast(positions >= tf.expand_dims(first_len, 1), tf.int32)
    else:
        segments = tf.zeros_like(ids)
    shape = [None, seq_len]
    return {
        "input_ids": ids.to_tensor(default_value=tokenizer.pad_id, shape=shape),
        "input_mask": tf.ones_like(ids).to_tensor(default_value=0, shape=shape),
        "segment_ids": segments.to_tensor(default_value=0, shape=shape),
    }


def encode_split(tokenizer, split, seq_len, batch_size=1024):
    """Encodes a `tasks.Split` in chunks; returns numpy int32 arrays {"input_ids", ...} of shape [N, T]."""
    chunks = []
    text = tf.TensorSpec([None], tf.string)
    if split.text_b is None:
        encode = tf.function(lambda a: encode_texts(tokenizer, a, None, seq_len), input_signature=[text])
    else:
        encode = tf.function(lambda a, b: encode_texts(tokenizer, a, b, seq_len), input_signature=[text, text])
    for start in range(0, len(split), batch_size):
        texts = [tf.constant(split.text_a[start:start + batch_size])]
        if split.text_b is not None:
            texts.append(tf.constant(split.text_b[start:start + batch_size]))
        chunks.append({k: v.numpy() for k, v in encode(*texts).items()})
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
