"""In-graph masking for masked-language-model pretraining: pure functions on one example.

Every function here takes one example `ids` (int32 [T], real tokens first, then padding) and a stateless seed
(int64 [2]) and returns fixed-shape tensors, so it runs the same way eagerly, in `tf.function` and inside
`tf.data` (one code path). Seeds come from `example_seed(seed, epoch, index)`: the mask of an example is a
pure function of (seed, epoch, example index) — reproducible, yet new each epoch (RoBERTa's dynamic masking).

What is chosen (`unit`):
  * "token": positions drawn uniformly *without replacement* among candidate tokens (fairseq
    `MaskTokensDataset`: `np.random.choice(sz, num_mask, replace=False)`). google-research/electra draws with
    replacement (duplicates, fewer distinct masks than asked); we do not.
  * "whole_word": whole words (a word = a word-start token plus its continuation pieces, from
    `tokenizer.word_start`) in random order; a word that would overflow the token budget is skipped and later
    words are still tried (google-research/bert `create_masked_lm_predictions` with `do_whole_word_mask`).
    This is the n-gram selection below with n = 1.
  * "ngram": ALBERT n-gram masking (google-research/albert `create_masked_lm_predictions`): word n-grams,
    n in {1..max_ngram} with p(n) proportional to 1/n (6/11, 3/11, 2/11 for n <= 3), started at word
    candidates taken in random order; an n-gram that would exceed the budget is shortened to the longest
    prefix that fits (skipped if none fits); an n-gram overlapping an earlier one is skipped. Differences from
    the original: an n-gram never crosses a special token (ALBERT can join the last word before [SEP] with the
    first word after it) and n is clipped at the end of a run of words instead of re-normalising p(n).

How many (`count_rule`, `n_real` = number of non-padding tokens, specials included, `n_cand` = candidates):
  * "fairseq": int(mask_prob * n_real + U[0, 1))  (fairseq probabilistic rounding, RoBERTa);
  * "bert": max(1, round(n_real * mask_prob))  (google-research/bert and albert `num_to_predict`);
  * "electra": max(1, min(n_cand, round(n_real * mask_prob)))  (google-research/electra `mask()`).
  All are then capped at `max_predictions` and at `n_cand`. `tf.round` rounds half to even like Python's
  `round`, as the originals do.

How each chosen token is replaced (`policy`):
  * "bert": 80% mask token, 10% random token, 10% kept (BERT, RoBERTa, ALBERT), decided per token;
  * "electra": 85% mask token, 15% kept, no random replacement (google-research/electra).
  Random replacements are drawn uniformly from the non-special ids. fairseq only excludes its first four
  specials (`<s>`, `<pad>`, `</s>`, `<unk>`), so it can put `<mask>` as a "random" token; we never do.

Candidates: every real token whose id is not in `special_ids` (padding included there). Special and padding
tokens are never chosen. fairseq differs: it can choose `<s>` and `</s>` (it masks over the whole item).
"""
import numpy as np
import tensorflow as tf

POLICIES = {"bert": (0.8, 0.1, 0.1), "electra": (0.85, 0.0, 0.15)}
COUNT_RULES = ("fairseq", "bert", "electra")
UNITS = ("token", "whole_word", "ngram")

# Stream constants folded into seeds so that masking and example construction draw independent numbers.
MASK_STREAM = 0x6D61736B
BUILD_STREAM = 0x6275696C


def default_max_predictions(seq_len, mask_prob):
    """google-research/electra's `max_predictions_per_seq`: int((mask_prob + 0.005) * seq_len).

    19 at 128 / 15%, 79 at 512 / 15%, 130 at 512 / 25% (REFERENCE §2).
    """
    return int((mask_prob + 0.005) * seq_len)


def example_seed(seed, epoch, index, stream=MASK_STREAM):
    """Stateless seed (int64 [2]) of one example: a function of (seed, epoch, index, stream) only."""
    base = tf.stack([tf.cast(seed, tf.int64), tf.constant(stream, tf.int64)])
    base = tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64))
    return tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))


def _split(seed, n):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def num_to_mask(n_real, n_cand, mask_prob, max_predictions, count_rule, seed):
    """Number of positions to predict (int32 scalar); see the module docstring for the rules."""
    n_real_f = tf.cast(n_real, tf.float32)
    if count_rule == "fairseq":
        u = tf.random.stateless_uniform([], seed)
        count = tf.cast(tf.floor(mask_prob * n_real_f + u), tf.int32)
    elif count_rule == "bert":
        count = tf.maximum(1, tf.cast(tf.round(n_real_f * mask_prob), tf.int32))
    elif count_rule == "electra":
        count = tf.maximum(1, tf.minimum(n_cand, tf.cast(tf.round(n_real_f * mask_prob), tf.int32)))
    else:
        raise ValueError(f"count_rule must be one of {COUNT_RULES}, got {count_rule!r}")
    return tf.minimum(tf.minimum(count, max_predictions), n_cand)


def _candidates(ids, special_ids):
    special = tf.constant(sorted(set(int(i) for i in special_ids)), tf.int32)
    return tf.reduce_all(tf.not_equal(ids[:, None], special[None, :]), axis=1)


def _select_tokens(candidate, count, seed):
    """Bool [T]: `count` candidate positions drawn uniformly without replacement."""
    scores = tf.where(candidate, tf.random.stateless_uniform(tf.shape(candidate), seed), -1.0)
    order = tf.argsort(scores, direction="DESCENDING", stable=True)
    ranks = tf.scatter_nd(order[:, None], tf.range(tf.size(order)), tf.shape(order))
    return candidate & (ranks < count)


def _words(candidate, word_start):
    """Word structure over candidate tokens.

    Returns (word_id [T] int32, -1 for non-candidates; run_id [T] int32 of each word's run of consecutive
    candidate words, indexed by word id; word_len [T] int32 indexed by word id; num_words int32).
    A word starts at a word-start token or right after a non-candidate (special) token.
    """
    prev_cand = tf.concat([[False], candidate[:-1]], 0)
    starts = candidate & (word_start | ~prev_cand)
    word_id = tf.where(candidate, tf.cumsum(tf.cast(starts, tf.int32)) - 1, -1)
    t = tf.size(candidate)
    num_words = tf.reduce_sum(tf.cast(starts, tf.int32))
    safe_id = tf.where(candidate, word_id, t - 1)
    word_len = tf.math.unsorted_segment_sum(tf.cast(candidate, tf.int32), safe_id, t)
    run_start = candidate & ~prev_cand
    token_run = tf.cumsum(tf.cast(run_start, tf.int32)) - 1
    run_of_word = tf.math.unsorted_segment_max(tf.where(candidate, token_run, -1), safe_id, t)
    return word_id, run_of_word, word_len, num_words


def ngram_probs(max_ngram=3):
    """p(n) proportional to 1/n for n = 1..max_ngram (6/11, 3/11, 2/11 for 3), as in google-research/albert."""
    p = 1.0 / np.arange(1, max_ngram + 1)
    return p / p.sum()


def select_ngrams(candidate, word_start, budget, seed, max_ngram=3):
    """ALBERT n-gram selection over whole words.

    Args:
      candidate: bool [T], tokens that may be masked.
      word_start: bool [T], True at the first piece of a word.
      budget: int32 scalar, maximum number of tokens to select.
      seed: int64 [2] stateless seed.
      max_ngram: longest n-gram in words.
    Returns:
      (selected bool [T], ngram_counts int32 [max_ngram]: how many n-grams of each length n = 1..max_ngram were
      realised, counted after shortening).
    """
    word_id, run_of_word, word_len, num_words = _words(candidate, word_start)
    t = tf.size(candidate)
    s_order, s_n = _split(seed, 2)
    scores = tf.where(tf.range(t) < num_words, tf.random.stateless_uniform([t], s_order), -1.0)
    order = tf.argsort(scores, direction="DESCENDING", stable=True)
    logits = tf.math.log(tf.constant(ngram_probs(max_ngram), tf.float32))[None, :]
    drawn_n = tf.cast(tf.random.stateless_categorical(logits, t, s_n)[0], tf.int32) + 1
    pad = tf.zeros([max_ngram], tf.int32)
    word_len_p = tf.concat([word_len, pad], 0)
    run_p = tf.concat([run_of_word, pad - 1], 0)
    offsets = tf.range(max_ngram)

    def body(i, covered, remaining, counts):
        w = order[i]
        idx = w + offsets
        lens = tf.cumsum(tf.gather(word_len_p, idx))
        same_run = (tf.gather(run_p, idx) == run_p[w]) & (idx < num_words)
        ok = (offsets < drawn_n[i]) & same_run & (lens <= remaining)
        n_fit = tf.reduce_sum(tf.math.cumprod(tf.cast(ok, tf.int32)))
        in_gram = offsets < n_fit
        clash = tf.reduce_any(in_gram & tf.gather(covered, tf.minimum(idx, t - 1)))
        accept = (n_fit > 0) & ~clash
        upd = tf.scatter_nd(tf.minimum(idx, t - 1)[:, None], tf.cast(in_gram & accept, tf.int32), [t]) > 0
        used = tf.where(accept, tf.gather(lens, tf.maximum(n_fit - 1, 0)), 0)
        counts = counts + tf.cast(accept & tf.equal(offsets + 1, n_fit), tf.int32)
        return i + 1, covered | upd, remaining - used, counts

    def cond(i, covered, remaining, counts):
        return (i < num_words) & (remaining > 0)

    _, covered, _, counts = tf.while_loop(
        cond, body, (tf.constant(0), tf.zeros([t], tf.bool), tf.cast(budget, tf.int32),
                     tf.zeros([max_ngram], tf.int32)))
    selected = candidate & tf.gather(covered, tf.maximum(word_id, 0))
    return selected, counts


def mask_tokens(ids, seed, *, vocab_size, mask_id, special_ids, pad_id, mask_prob=0.15,
                max_predictions=20, policy="bert", count_rule="fairseq", unit="token",
                word_start=None, max_ngram=3):
    """Masks one example.

    Args:
      ids: int32 [T], one example (specials included, padding `pad_id` at the end).
      seed: int64 [2] stateless seed (see `example_seed`).
      vocab_size, mask_id, special_ids, pad_id: vocabulary facts (python ints / list).
      mask_prob: fraction of real tokens to predict.
      max_predictions: P, the fixed number of prediction slots.
      policy: "bert" (80/10/10) or "electra" (85/15, no random token).
      count_rule: "fairseq", "bert" or "electra" (module docstring).
      unit: "token", "whole_word" or "ngram".
      word_start: bool [T], required for "whole_word" and "ngram".
      max_ngram: longest n-gram for unit="ngram".
    Returns:
      masked_ids int32 [T]; positions int32 [P] (ascending, then 0-padded); labels int32 [P] (original ids,
      0-padded); weights float32 [P] (1.0 for real predictions, 0.0 for padding slots).
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {sorted(POLICIES)}, got {policy!r}")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if unit != "token" and word_start is None:
        raise ValueError(f"unit={unit!r} needs word_start")
    p_mask, p_random, _ = POLICIES[policy]
    ids = tf.convert_to_tensor(ids, tf.int32)
    t = tf.size(ids)
    s_count, s_select, s_action, s_random = _split(tf.cast(seed, tf.int64), 4)
    specials = set(int(i) for i in special_ids) | {int(pad_id)}
    candidate = _candidates(ids, specials)
    n_real = tf.reduce_sum(tf.cast(tf.not_equal(ids, pad_id), tf.int32))
    n_cand = tf.reduce_sum(tf.cast(candidate, tf.int32))
    count = num_to_mask(n_real, n_cand, mask_prob, max_predictions, count_rule, s_count)
    if unit == "token":
        selected = _select_tokens(candidate, count, s_select)
    elif unit == "whole_word":
        selected, _ = select_ngrams(candidate, tf.cast(word_start, tf.bool), count, s_select, max_ngram=1)
    else:
        selected, _ = select_ngrams(candidate, tf.cast(word_start, tf.bool), count, s_select, max_ngram)

    u = tf.random.stateless_uniform([t], s_action)
    allowed = np.array([i for i in range(vocab_size) if i not in specials], np.int32)
    rand_idx = tf.random.stateless_uniform([t], s_random, 0, len(allowed), dtype=tf.int32)
    random_ids = tf.gather(tf.constant(allowed), rand_idx)
    replaced = tf.where(u < p_mask, tf.fill([t], tf.constant(mask_id, tf.int32)),
                        tf.where(u < p_mask + p_random, random_ids, ids))
    masked_ids = tf.where(selected, replaced, ids)

    pos_key = tf.where(selected, tf.range(t), t)
    positions = tf.sort(pos_key)[:max_predictions]
    positions = tf.pad(positions, [[0, tf.maximum(0, max_predictions - tf.size(positions))]],
                       constant_values=t)
    valid = positions < t
    positions = tf.where(valid, positions, 0)
    labels = tf.where(valid, tf.gather(ids, positions), 0)
    weights = tf.cast(valid, tf.float32)
    positions = tf.ensure_shape(positions, [max_predictions])
    return masked_ids, positions, tf.ensure_shape(labels, [max_predictions]), \
        tf.ensure_shape(weights, [max_predictions])
