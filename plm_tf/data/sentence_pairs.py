"""In-graph sentence-pair examples: ALBERT sentence-order prediction (SOP) and BERT next-sentence prediction.

Follows `create_instances_from_document` of google-research/albert (SOP) and google-research/bert (NSP), made
streaming: a `tf.data.Dataset.scan` over the item stream of `corpus.token_item_dataset` holds the current chunk
of lines, the first `seq_len - 3` tokens of the current document and those of the previous document.

A chunk accumulates consecutive lines of one document until its token count reaches the target length
(`seq_len - 3`, or with p = `short_seq_prob` a random length in [2, seq_len - 3]) or the document ends. Then:
  * A = the chunk's first `a_end` lines, `a_end` uniform in [1, lines - 1]; B = the rest (contiguous with A).
  * SOP (label `sentence_order_label`): with p = 0.5 A and B are swapped (label 1), else kept (label 0).
    A one-line chunk is split at a random token (both sides non-empty), so no pair ever mixes documents.
    `random_next_sentence=True` reproduces ALBERT's behaviour instead: a one-line chunk takes B from another
    document (label 1) — the NSP leak that REFERENCE §4 warns about.
  * NSP (label `next_sentence_label`): with p = 0.5, and always for a one-line chunk, B comes from another
    document (label 1) and the chunk's unused lines start the next chunk (BERT puts them back); else B is
    the actual continuation (label 0).
  * The longer side is trimmed one token at a time, from the front or the back at random (BERT/ALBERT
    `truncate_seq_pair`), until the pair fits in `seq_len - 3` tokens.
  * Example: `[CLS] A [SEP] B [SEP]`, segment ids 0 up to the first `[SEP]`, 1 after.

Differences from the originals, forced by streaming: (1) "another document" is a random window of the
previous document (never the current one; BERT picks a random document of the whole corpus and a random
start line); when there is no previous document yet the pair is built as if not random. (2) The target length
is drawn per chunk (the originals draw it once per document), so `short_seq_prob` is the share of examples,
not of documents. (3) Lines put back by NSP at the very end of a document are dropped. Random draws are
stateless, seeded from (seed, epoch, item index).
"""
import tensorflow as tf

from plm_tf.data import corpus
from plm_tf.data import masking


def truncate_pair(a, b, max_tokens, seed):
    """BERT/ALBERT `truncate_seq_pair` in closed form.

    The longer side (B on ties) loses one token at a time, front or back with p = 0.5 each, until
    len(a) + len(b) <= max_tokens. Returns the trimmed (a, b).
    """
    la, lb = tf.size(a), tf.size(b)
    excess = tf.maximum(0, la + lb - max_tokens)
    d = tf.abs(la - lb)
    e = tf.maximum(0, excess - d)
    a_longer = la > lb
    ra = tf.where(excess <= d, tf.where(a_longer, excess, 0), tf.where(a_longer, d + e // 2, e // 2))
    rb = excess - ra
    s_a, s_b = masking._split(seed, 2)
    fa = tf.cast(tf.random.stateless_binomial([], s_a, tf.cast(ra, tf.float32), 0.5), tf.int32)
    fb = tf.cast(tf.random.stateless_binomial([], s_b, tf.cast(rb, tf.float32), 0.5), tf.int32)
    return a[fa:la - (ra - fa)], b[fb:lb - (rb - fb)]


def pair_examples(items, seq_len, cls_id, sep_id, pad_id, seed, epoch=0, task="sop", short_seq_prob=0.1,
                  random_next_sentence=False):
    """Sentence-pair examples (module docstring).

    Args:
      items: dataset of (ids int32 [n], kind int32 []) from `corpus.token_item_dataset`.
      seq_len: T, including [CLS] and two [SEP].
      cls_id, sep_id, pad_id: token ids.
      seed: int; epoch: int or int64 scalar tensor.
      task: "sop" (ALBERT) or "nsp" (BERT).
      short_seq_prob: probability of a shorter random target length.
      random_next_sentence: SOP only; True reproduces ALBERT's random-document B for one-line chunks.
    Returns:
      dataset of (input_ids int32 [T], segment_ids int32 [T], label int32 []).
    """
    if task not in ("sop", "nsp"):
        raise ValueError(f"task must be 'sop' or 'nsp', got {task!r}")
    if seq_len < 5:
        raise ValueError(f"seq_len must be at least 5 for a sentence pair, got {seq_len}")
    max_tokens = seq_len - 3
    empty = tf.zeros([0], tf.int32)

    def draw_target(s):
        s_p, s_len = masking._split(s, 2)
        short = tf.random.stateless_uniform([], s_p) < short_seq_prob
        return tf.where(short, tf.random.stateless_uniform([], s_len, 2, max_tokens + 1, dtype=tf.int32),
                        max_tokens)

    def build(buf, lens, target, prev_doc, s):
        s_aend, s_rand, s_swap, s_split, s_start, s_trunc, s_target = masking._split(s, 7)
        nseg = tf.size(lens)
        a_end = tf.where(nseg >= 2,
                         tf.random.stateless_uniform([], s_aend, 1, tf.maximum(nseg, 2), dtype=tf.int32), 1)
        a_len = tf.reduce_sum(lens[:a_end])
        has_prev = tf.size(prev_doc) > 0
        if task == "nsp":
            random_b = has_prev & ((nseg == 1) | (tf.random.stateless_uniform([], s_rand) < 0.5))
        else:
            random_b = has_prev & (nseg == 1) & tf.constant(bool(random_next_sentence))
        n = tf.size(buf)
        split_at = tf.random.stateless_uniform([], s_split, 1, tf.maximum(n, 2), dtype=tf.int32)
        one_line = (nseg == 1) & ~random_b
        a_len = tf.where(one_line, split_at, a_len)
        ok = tf.where(one_line, n >= 2, True)
        b_len = tf.maximum(1, target - a_len)
        start = tf.random.stateless_uniform(
            [], s_start, 0, tf.maximum(1, tf.size(prev_doc) - b_len + 1), dtype=tf.int32)
        a = buf[:a_len]
        b = tf.cond(random_b, lambda: prev_doc[start:start + b_len], lambda: buf[a_len:])
        if task == "sop":
            swap = ~random_b & (tf.random.stateless_uniform([], s_swap) < 0.5)
            a, b = (tf.cond(swap, lambda: b, lambda: a), tf.cond(swap, lambda: a, lambda: b))
            label = tf.cast(random_b | swap, tf.int32)
            rest, rest_lens = empty, empty
        else:
            label = tf.cast(random_b, tf.int32)
            rest = tf.cond(random_b, lambda: buf[a_len:], lambda: empty)
            rest_lens = tf.cond(random_b, lambda: lens[a_end:], lambda: empty)
        a, b = truncate_pair(a, b, max_tokens, s_trunc)
        ids = tf.concat([[cls_id], a, [sep_id], b, [sep_id]], 0)
        segs = tf.concat([tf.zeros([tf.size(a) + 2], tf.int32), tf.ones([tf.size(b) + 1], tf.int32)], 0)
        ok = ok & (tf.size(a) > 0) & (tf.size(b) > 0)
        pad = seq_len - tf.size(ids)
        ids = tf.ensure_shape(tf.pad(ids, [[0, pad]], constant_values=pad_id), [seq_len])
        segs = tf.ensure_shape(tf.pad(segs, [[0, pad]]), [seq_len])
        return ids, segs, label, ok, rest, rest_lens, draw_target(s_target)

    def step(state, item):
        buf, lens, target, prev_doc, cur_doc, index = state
        ids, kind = item
        is_line = tf.equal(kind, corpus.LINE)
        buf = tf.cond(is_line, lambda: tf.concat([buf, ids], 0), lambda: buf)
        lens = tf.cond(is_line, lambda: tf.concat([lens, [tf.size(ids)]], 0), lambda: lens)
        cur_doc = tf.cond(is_line, lambda: tf.concat([cur_doc, ids], 0)[:max_tokens], lambda: cur_doc)
        create = tf.where(is_line, tf.size(buf) >= target, tf.size(buf) > 0)
        s = masking.example_seed(seed, epoch, index, masking.BUILD_STREAM)
        ex, segs, label, ok, buf, lens, target = tf.cond(
            create, lambda: build(buf, lens, target, prev_doc, s),
            lambda: (tf.fill([seq_len], pad_id), tf.zeros([seq_len], tf.int32), 0, False, buf, lens, target))
        doc_end = ~is_line
        buf = tf.cond(doc_end, lambda: empty, lambda: buf)
        lens = tf.cond(doc_end, lambda: empty, lambda: lens)
        prev_doc = tf.cond(doc_end & (tf.size(cur_doc) > 0), lambda: cur_doc, lambda: prev_doc)
        cur_doc = tf.cond(doc_end, lambda: empty, lambda: cur_doc)
        return (buf, lens, target, prev_doc, cur_doc, index + 1), (ex, segs, label, create & ok)

    init = (empty, empty, tf.constant(max_tokens), empty, empty, tf.constant(0, tf.int64))
    ds = items.scan(init, step).filter(lambda ex, segs, label, emit: emit)
    return ds.map(lambda ex, segs, label, emit: (ex, segs, label))
