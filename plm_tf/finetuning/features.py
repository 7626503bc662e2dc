"""Raw text → encoder features, in graph: the one path used for training, evaluation and the exported model.

    encode_texts(tokenizer, text_a, text_b=None, seq_len=128)
        → {"input_ids", "input_mask", "segment_ids"} int32 [N, seq_len]

Layouts (the tokenizer's `cls_id` / `sep_id` are `[CLS]`/`[SEP]` or RoBERTa's `<s>`/`</s>`):
- WordPiece / SentencePiece (BERT, ALBERT, ELECTRA): `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`, segment ids
  0 up to and including the first `[SEP]`, 1 after (google-research/bert `run_classifier.convert_single_example`).
- Byte-level BPE (RoBERTa): `<s> A </s>` and `<s> A </s></s> B </s>`, segment ids all 0 (fairseq
  `sentence_prediction` task; RoBERTa has a single token type).

Truncation (google-research/bert's `_truncate_seq_pair`) and packing are `plm_tf.export.serving.pack_segments`,
the code the exported SavedModels run, so training, evaluation and serving cannot disagree on a layout.
"""
import numpy as np
import tensorflow as tf

from plm_tf.export import serving


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

    Raises:
        ValueError (`ExportError`): `seq_len` leaves no room for the texts after the special tokens.
    """
    segments = [tokenizer.tokenize(text_a)] + ([] if text_b is None else [tokenizer.tokenize(text_b)])
    layout = serving.layout_for(tokenizer)
    packed = serving.pack_segments(segments, seq_len, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id,
                                   layout, second_type_id=0 if layout == "roberta" else 1)
    return {"input_ids": packed["input_word_ids"], "input_mask": packed["input_mask"],
            "segment_ids": packed["input_type_ids"]}


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
