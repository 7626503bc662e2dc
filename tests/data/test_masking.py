"""Statistics of the in-graph masking functions over many draws (plm_tf.data.masking)."""
import numpy as np
import tensorflow as tf

from plm_tf.data import masking

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIALS = [PAD, UNK, CLS, SEP, MASK]
VOCAB = 1000


def make_ids(n_real, seq_len):
    """[CLS] 5..(n_real-2 tokens) [SEP] + padding: distinct non-special tokens."""
    body = np.arange(10, 10 + n_real - 2)
    return np.concatenate([[CLS], body, [SEP], [PAD] * (seq_len - n_real)]).astype(np.int32)


def draw(ids, n, word_start=None, seed=7, epoch=0, **kwargs):
    """Masks the same example n times (indices 0..n-1); returns numpy arrays [n, ...]."""
    ids = tf.constant(ids)
    ws = None if word_start is None else tf.constant(word_start)
    kwargs.setdefault("vocab_size", VOCAB)

    def fn(i):
        return masking.mask_tokens(ids, masking.example_seed(seed, epoch, i), mask_id=MASK,
                                   special_ids=SPECIALS, pad_id=PAD, word_start=ws, **kwargs)

    batch = next(iter(tf.data.Dataset.range(n).map(fn).batch(n)))
    return [b.numpy() for b in batch]


class CountTest(tf.test.TestCase):

    def test_fairseq_probabilistic_rounding_mean(self):
        # E[int(p * len + U)] = p * len exactly: 0.15 * 101 = 15.15.
        ids = make_ids(101, 128)
        _, _, _, w = draw(ids, 4000, max_predictions=40, count_rule="fairseq")
        counts = w.sum(1)
        self.assertAllInSet(np.unique(counts), [15, 16])
        self.assertNear(counts.mean(), 15.15, 0.03)

    def test_bert_and_electra_counts_are_fixed(self):
        ids = make_ids(101, 128)
        for rule in ("bert", "electra"):
            _, _, _, w = draw(ids, 200, max_predictions=40, count_rule=rule)
            self.assertAllEqual(w.sum(1), np.full(200, 15))  # round(15.15)
        _, _, _, w = draw(make_ids(4, 16), 50, max_predictions=5, count_rule="electra")
        self.assertAllEqual(w.sum(1), np.full(50, 1))  # max(1, ...) with 2 candidates

    def test_capped_by_max_predictions_and_candidates(self):
        _, _, _, w = draw(make_ids(101, 128), 50, max_predictions=7, count_rule="bert")
        self.assertAllEqual(w.sum(1), np.full(50, 7))
        _, _, _, w = draw(make_ids(5, 16), 50, max_predictions=10, mask_prob=0.9, count_rule="bert")
        self.assertAllEqual(w.sum(1), np.full(50, 3))  # only 3 non-special tokens

    def test_default_max_predictions(self):
        self.assertEqual(masking.default_max_predictions(128, 0.15), 19)
        self.assertEqual(masking.default_max_predictions(512, 0.15), 79)
        self.assertEqual(masking.default_max_predictions(512, 0.25), 130)


class ReplacementTest(tf.test.TestCase):

    def _split(self, ids, n, policy):
        masked, pos, labels, w = draw(ids, n, max_predictions=20, count_rule="bert", policy=policy)
        valid = w > 0
        new = np.take_along_axis(masked, pos, 1)[valid]
        orig = labels[valid]
        self.assertAllEqual(orig, np.take_along_axis(np.tile(ids, (n, 1)), pos, 1)[valid])
        return np.mean(new == MASK), np.mean((new != MASK) & (new != orig)), np.mean(new == orig), new

    def test_bert_80_10_10(self):
        m, r, k, new = self._split(make_ids(101, 128), 3000, "bert")
        self.assertNear(m, 0.8, 0.01)
        self.assertNear(r, 0.1 * (1 - 1 / 995), 0.01)
        self.assertNear(k, 0.1, 0.01)
        self.assertNotIn(UNK, new[new != MASK])  # random replacements avoid every special id

    def test_electra_85_15_no_random(self):
        m, r, k, _ = self._split(make_ids(101, 128), 3000, "electra")
        self.assertNear(m, 0.85, 0.01)
        self.assertEqual(r, 0.0)
        self.assertNear(k, 0.15, 0.01)

    def test_realised_rate_and_uniform_positions(self):
        ids = make_ids(101, 128)
        _, pos, _, w = draw(ids, 3000, max_predictions=20, count_rule="bert")
        hits = np.bincount(pos[w > 0], minlength=128)
        self.assertAllEqual(hits[[0, 100]], [0, 0])  # [CLS] and [SEP]
        self.assertAllEqual(hits[101:], np.zeros(27))  # padding
        freq = hits[1:100] / 3000
        self.assertNear(freq.mean(), 15 / 99, 0.002)  # 15 of 99 candidates
        self.assertLess(np.abs(freq - 15 / 99).max(), 0.035)

    def test_positions_distinct_sorted_and_padded(self):
        _, pos, labels, w = draw(make_ids(60, 64), 300, max_predictions=12, count_rule="fairseq")
        for p, l, ww in zip(pos, labels, w):
            k = int(ww.sum())
            self.assertAllEqual(ww[:k], np.ones(k))
            self.assertEqual(len(set(p[:k])), k)
            self.assertAllEqual(p[:k], np.sort(p[:k]))
            self.assertAllEqual(p[k:], np.zeros(12 - k))
            self.assertAllEqual(l[k:], np.zeros(12 - k))

    def test_specials_inside_text_never_masked(self):
        ids = make_ids(60, 64)
        ids[[10, 20, 30]] = [SEP, UNK, MASK]
        masked, pos, _, w = draw(ids, 500, max_predictions=30, mask_prob=0.4, count_rule="bert")
        chosen = set(pos[w > 0].tolist())
        self.assertFalse(chosen & {0, 10, 20, 30, 59})
        self.assertAllEqual(masked[:, [0, 10, 20, 30, 59]], np.tile(ids[[0, 10, 20, 30, 59]], (500, 1)))
        self.assertAllEqual(masked[:, 60:], np.zeros((500, 4)))


class SeedTest(tf.test.TestCase):

    def test_same_seed_epoch_index_same_mask_other_epoch_other_mask(self):
        ids = make_ids(101, 128)
        a = draw(ids, 20, epoch=3, max_predictions=20)
        b = draw(ids, 20, epoch=3, max_predictions=20)
        c = draw(ids, 20, epoch=4, max_predictions=20)
        for x, y in zip(a, b):
            self.assertAllEqual(x, y)
        self.assertGreater(np.mean(np.any(a[1] != c[1], axis=1)), 0.95)
        self.assertGreater(np.mean(np.any(a[1][1:] != a[1][:-1], axis=1)), 0.95)  # index changes it too

    def test_eager_equals_graph(self):
        ids = tf.constant(make_ids(50, 64))
        seed = masking.example_seed(1, 2, 3)
        kw = dict(vocab_size=VOCAB, mask_id=MASK, special_ids=SPECIALS, pad_id=PAD, max_predictions=10)
        eager = masking.mask_tokens(ids, seed, **kw)
        graph = tf.function(lambda i, s: masking.mask_tokens(i, s, **kw))(ids, seed)
        for x, y in zip(eager, graph):
            self.assertAllEqual(x, y)


def word_starts(seq_len, n_real, rng, p_start=0.6):
    ws = rng.rand(seq_len) < p_start
    ws[0] = ws[1] = ws[n_real - 1] = True
    return ws


class WholeWordTest(tf.test.TestCase):

    def test_whole_words_only_and_budget(self):
        rng = np.random.RandomState(0)
        ids = make_ids(101, 128)
        ws = word_starts(128, 101, rng)
        _, pos, _, w = draw(ids, 500, word_start=ws, max_predictions=20, count_rule="bert", unit="whole_word")
        word = np.cumsum(ws)
        for p, ww in zip(pos, w):
            chosen = set(p[ww > 0].tolist())
            self.assertLessEqual(len(chosen), 15)
            self.assertGreaterEqual(len(chosen), 14)  # BERT keeps trying shorter words after an overflow
            for c in chosen:
                members = [i for i in range(1, 100) if word[i] == word[c]]
                self.assertTrue(set(members) <= chosen, (c, members, chosen))


class NgramTest(tf.test.TestCase):

    def test_probabilities(self):
        self.assertAllClose(masking.ngram_probs(3), [6 / 11, 3 / 11, 2 / 11])

    def test_realised_ngram_lengths(self):
        # Long example of one-token words, budget 2% of it: overlaps are rare and only the last n-gram of an
        # example can be shortened by the budget, so the realised lengths follow p(n) = 6/11, 3/11, 2/11.
        t = 2048
        candidate = tf.constant(np.r_[[False], np.ones(t - 2, bool), [False]])
        ws = tf.ones([t], tf.bool)

        def fn(i):
            return masking.select_ngrams(candidate, ws, tf.constant(40), masking.example_seed(0, 0, i))[1]

        counts = next(iter(tf.data.Dataset.range(1500).map(fn).batch(1500))).numpy().sum(0)
        freq = counts / counts.sum()
        self.assertAllClose(freq, [6 / 11, 3 / 11, 2 / 11], atol=0.02)

    def test_ngrams_cover_whole_words_and_respect_budget(self):
        rng = np.random.RandomState(1)
        ids = make_ids(120, 128)
        ws = word_starts(128, 120, rng, 0.5)
        _, pos, _, w = draw(ids, 300, word_start=ws, max_predictions=19, count_rule="bert", unit="ngram")
        word = np.cumsum(ws)
        for p, ww in zip(pos, w):
            chosen = sorted(set(p[ww > 0].tolist()))
            self.assertLessEqual(len(chosen), 18)  # round(120 * 0.15)
            self.assertGreater(len(chosen), 0)
            for c in chosen:
                self.assertTrue({i for i in range(1, 119) if word[i] == word[c]} <= set(chosen))
            # maximal runs of chosen tokens span at most... whole words; n-grams of <= 3 words each, so a
            # run of k adjacent n-grams is fine, but no run may start or end inside a word.
            for c in chosen:
                self.assertNotIn(c, (0, 119))


class BadArgumentTest(tf.test.TestCase):

    def test_errors(self):
        ids = make_ids(10, 16)
        kw = dict(vocab_size=VOCAB, mask_id=MASK, special_ids=SPECIALS, pad_id=PAD)
        with self.assertRaisesRegex(ValueError, "policy"):
            masking.mask_tokens(ids, [1, 2], policy="xlnet", **kw)
        with self.assertRaisesRegex(ValueError, "unit"):
            masking.mask_tokens(ids, [1, 2], unit="span", **kw)
        with self.assertRaisesRegex(ValueError, "word_start"):
            masking.mask_tokens(ids, [1, 2], unit="ngram", **kw)
        with self.assertRaisesRegex(ValueError, "count_rule"):
            masking.mask_tokens(ids, [1, 2], count_rule="xlnet", **kw)


if __name__ == "__main__":
    tf.test.main()
