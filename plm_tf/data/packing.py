"""In-graph example construction by packing lines: RoBERTa FULL-/DOC-SENTENCES and ELECTRA segments.

Both builders consume the item stream of `corpus.token_item_dataset` — `(ids int32 [n], kind int32 [])` with
kind LINE / DOC_END / STREAM_END — through `tf.data.Dataset.scan`, whose state holds only the example being
built, and return a dataset of `(input_ids int32 [T], segment_ids int32 [T])` padded with `pad_id`.
Lines must already be split to fit (`corpus.token_item_dataset(max_line_tokens=...)`): T - 2 tokens.
"""
import tensorflow as tf

from plm_tf.data import corpus
from plm_tf.data import masking


def _pad(x, length, value):
    x = x[:length]
    return tf.ensure_shape(tf.pad(x, [[0, length - tf.size(x)]], constant_values=value), [length])


def roberta_examples(items, seq_len, cls_id, sep_id, pad_id, mode="full"):
    """RoBERTa packing (fairseq `TokenBlockDataset`, `token_block_utils_fast.pyx`).

    Each line is its tokens followed by `</s>` (fairseq binarizes every line with an end-of-sentence). Whole
    lines are packed into a block of at most `seq_len - 1` tokens; `<s>` is prepended (fairseq
    `PrependTokenDataset`), so an example is `<s> line </s> line </s> ... </s>`, padded to `seq_len`.
      * mode="full" (FULL-SENTENCES, fairseq break_mode 'complete'): blocks cross documents; a document
        boundary adds one extra `</s>` (fairseq's empty line), giving `... </s> </s> next-document ...`.
        A line is added while it fits or the block is empty, otherwise the block is emitted.
      * mode="doc" (DOC-SENTENCES, break_mode 'complete_doc'): the same, but a document end emits the block
        and the boundary adds no token.
    Lines longer than `seq_len - 2` tokens must have been split before (fairseq would emit one oversized
    block). The stream's STREAM_END item emits the last partial block.

    Args:
      items: dataset of (ids int32 [n], kind int32 []).
      seq_len: T, the example length including `<s>`.
      cls_id, sep_id, pad_id: `<s>`, `</s>`, `<pad>` ids.
      mode: "full" or "doc".
    Returns:
      dataset of (input_ids int32 [T], segment_ids int32 [T] all zero).
    """
    if mode not in ("full", "doc"):
        raise ValueError(f"mode must be 'full' or 'doc', got {mode!r}")
    block = seq_len - 1
    sep = tf.constant([sep_id], tf.int32)
    empty = tf.zeros([0], tf.int32)

    def step(buf, item):
        ids, kind = item
        if mode == "full":
            sent = tf.cond(tf.equal(kind, corpus.STREAM_END), lambda: empty,
                           lambda: tf.concat([ids, sep], 0))
            flush = tf.equal(kind, corpus.STREAM_END) | (
                (tf.size(buf) + tf.size(sent) > block) & (tf.size(buf) > 0))
        else:
            sent = tf.cond(tf.equal(kind, corpus.LINE), lambda: tf.concat([ids, sep], 0), lambda: empty)
            flush = tf.not_equal(kind, corpus.LINE) | (
                (tf.size(buf) + tf.size(sent) > block) & (tf.size(buf) > 0))
        emit = flush & (tf.size(buf) > 0)
        out = (_pad(tf.concat([[cls_id], buf], 0), seq_len, pad_id), emit)
        new = tf.cond(flush, lambda: sent, lambda: tf.concat([buf, sent], 0))
        return new, out

    ds = items.scan(empty, step).filter(lambda ex, emit: emit)
    return ds.map(lambda ex, emit: (ex, tf.zeros([seq_len], tf.int32)))


def electra_examples(items, seq_len, cls_id, sep_id, pad_id, seed, epoch=0):
    """ELECTRA segment packing (google-research/electra `build_pretraining_dataset.py`, `ExampleBuilder`).

    Lines accumulate until their token count reaches the target length (initially `seq_len`) or a document
    ends; then the example is built:
      * with p = 0.1 a single segment (first-segment target 100000), else first-segment target
        (target - 3) // 2;
      * each accumulated line goes to the first segment if the first segment is empty, or if it keeps the
        first segment under its target, or — while the second segment is empty and the first is under target —
        with p = 0.5; otherwise to the second segment (as in the original, a later short line can still join
        the first segment);
      * first = first[:T - 2], second = second[:max(0, T - len(first) - 3)];
      * `[CLS] first [SEP]` (segment 0) then `second [SEP]` (segment 1) if the second segment is non-empty;
      * the next target is `seq_len`, or with p = 0.05 a random length in [5, seq_len].
    The tokens beyond the truncation are dropped (as in the original). Random draws are stateless, seeded
    from (seed, epoch, index of the item that completed the example).

    Args:
      items: dataset of (ids int32 [n], kind int32 []).
      seq_len: T (the original's max_seq_length, [CLS]/[SEP] included).
      cls_id, sep_id, pad_id: token ids.
      seed: int; epoch: int or int64 scalar tensor.
    Returns:
      dataset of (input_ids int32 [T], segment_ids int32 [T]).
    """
    empty = tf.zeros([0], tf.int32)

    def build(buf, lens, target, s):
        s_single, s_coin, s_short, s_len = masking._split(s, 4)
        single = tf.random.stateless_uniform([], s_single) < 0.1
        first_target = tf.where(single, 100000, (target - 3) // 2)
        coins = tf.random.stateless_uniform([tf.size(lens)], s_coin) < 0.5

        def body(i, nf, ns, to_first):
            n = lens[i]
            first = (nf == 0) | (nf + n < first_target) | ((ns == 0) & (nf < first_target) & coins[i])
            return (i + 1, nf + tf.where(first, n, 0), ns + tf.where(first, 0, n),
                    to_first.write(i, first))

        _, _, _, to_first = tf.while_loop(
            lambda i, *_: i < tf.size(lens), body,
            (0, 0, 0, tf.TensorArray(tf.bool, size=tf.size(lens))))
        tok_first = tf.repeat(to_first.stack(), lens)
        first = tf.boolean_mask(buf, tok_first)[:seq_len - 2]
        second = tf.boolean_mask(buf, ~tok_first)
        second = second[:tf.maximum(0, seq_len - tf.size(first) - 3)]
        has_second = tf.size(second) > 0
        second = tf.cond(has_second, lambda: tf.concat([second, [sep_id]], 0), lambda: empty)
        ids = tf.concat([[cls_id], first, [sep_id], second], 0)
        segs = tf.concat([tf.zeros([tf.size(first) + 2], tf.int32), tf.ones([tf.size(second)], tf.int32)], 0)
        short = tf.random.stateless_uniform([], s_short) < 0.05
        rand_len = tf.random.stateless_uniform([], s_len, 5, seq_len + 1, dtype=tf.int32)
        next_target = tf.where(short, rand_len, seq_len)
        return _pad(ids, seq_len, pad_id), _pad(segs, seq_len, 0), next_target

    def step(state, item):
        buf, lens, target, index = state
        ids, kind = item
        is_line = tf.equal(kind, corpus.LINE)
        buf = tf.cond(is_line, lambda: tf.concat([buf, ids], 0), lambda: buf)
        lens = tf.cond(is_line, lambda: tf.concat([lens, [tf.size(ids)]], 0), lambda: lens)
        total = tf.size(buf)
        emit = tf.where(is_line, total >= target, total > 0)
        s = masking.example_seed(seed, epoch, index, masking.BUILD_STREAM)
        ex, segs, new_target = tf.cond(
            emit, lambda: build(buf, lens, target, s),
            lambda: (tf.fill([seq_len], pad_id), tf.zeros([seq_len], tf.int32), target))
        buf = tf.cond(emit, lambda: empty, lambda: buf)
        lens = tf.cond(emit, lambda: empty, lambda: lens)
        return (buf, lens, new_target, index + 1), (ex, segs, emit)

    init = (empty, empty, tf.constant(seq_len), tf.constant(0, tf.int64))
    ds = items.scan(init, step).filter(lambda ex, segs, emit: emit)
    return ds.map(lambda ex, segs, emit: (ex, segs))
