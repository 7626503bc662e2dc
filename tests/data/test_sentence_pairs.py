"""SOP and NSP pair construction (plm_tf.data.sentence_pairs)."""
import numpy as np
import tensorflow as tf

from plm_tf.data import corpus
from plm_tf.data import masking
from plm_tf.data import sentence_pairs

PAD, CLS, SEP = 0, 1, 2


def synthetic_docs(num_docs, seed, max_lines=10, max_len=30):
    """Token 10000*d + 100*l + k is unique to (document d, line l, position k), increasing in corpus order."""
    rng = np.random.RandomState(seed)
    return [[[10000 * d + 100 * l + k for k in range(rng.randint(1, max_len))]
             for l in range(rng.randint(1, max_lines))] for d in range(1, num_docs + 1)]


def item_dataset(docs):
    def gen():
        for doc in docs:
            for line in doc:
                yield np.array(line, np.int32), corpus.LINE
            yield np.zeros([0], np.int32), corpus.DOC_END
        yield np.zeros([0], np.int32), corpus.STREAM_END
    return tf.data.Dataset.from_generator(gen, output_signature=(
        tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)))


def split_pair(ex, segs):
    k = int((ex != PAD).sum())
    seps = np.flatnonzero(ex[:k] == SEP)
    assert len(seps) == 2 and ex[0] == CLS and seps[1] == k - 1, ex
    assert (segs[:seps[0] + 1] == 0).all() and (segs[seps[0] + 1:k] == 1).all()
    return ex[1:seps[0]].tolist(), ex[seps[0] + 1:k - 1].tolist()


def doc_stream(docs):
    return {d + 1: sum(doc, []) for d, doc in enumerate(docs)}


def is_contiguous(tokens, stream):
    if not tokens:
        return False
    i = stream.index(tokens[0])
    return stream[i:i + len(tokens)] == tokens


class SopTest(tf.test.TestCase):

    def _pairs(self, docs, t, **kw):
        ds = sentence_pairs.pair_examples(item_dataset(docs), t, CLS, SEP, PAD, seed=11, task="sop", **kw)
        return [(split_pair(ex, segs), int(label)) for ex, segs, label in ds.as_numpy_iterator()]

    def test_labels_balanced_adjacent_and_ordered(self):
        docs = synthetic_docs(150, seed=0)
        streams = doc_stream(docs)
        t = 48
        pairs = self._pairs(docs, t)
        labels = np.array([lab for _, lab in pairs])
        self.assertGreater(len(pairs), 250)
        self.assertNear(labels.mean(), 0.5, 0.06)
        untruncated = 0
        for (a, b), label in pairs:
            self.assertTrue(a and b)
            self.assertLessEqual(len(a) + len(b), t - 3)
            self.assertEqual(len({v // 10000 for v in a + b}), 1)  # no pair mixes documents
            first, second = (a, b) if label == 0 else (b, a)
            self.assertLess(max(first), min(second))  # label 0: A precedes B; label 1: swapped
            stream = streams[a[0] // 10000]
            self.assertTrue(is_contiguous(a, stream) and is_contiguous(b, stream))
            if len(a) + len(b) < t - 3:  # nothing was trimmed: the segments are adjacent in the document
                untruncated += 1
                self.assertTrue(is_contiguous(first + second, stream), (first, second))
        self.assertGreater(untruncated, 50)

    def test_random_next_sentence_flag_reproduces_the_leak(self):
        docs = synthetic_docs(150, seed=1, max_lines=3)  # many one-line chunks
        mixed_default = sum(len({v // 10000 for v in a + b}) > 1 for (a, b), _ in self._pairs(docs, 48))
        leak = self._pairs(docs, 48, random_next_sentence=True)
        mixed = [(a, b, lab) for (a, b), lab in leak if len({v // 10000 for v in a + b}) > 1]
        self.assertEqual(mixed_default, 0)
        self.assertGreater(len(mixed), 10)
        self.assertTrue(all(lab == 1 and b[0] // 10000 < a[0] // 10000 for a, b, lab in mixed))

    def test_short_seq_prob(self):
        docs = [[[10000 * d + 100 * l + k for k in range(8)] for l in range(300)] for d in range(1, 3)]
        def short_share(p):
            pairs = self._pairs(docs, 64, short_seq_prob=p)
            return np.array([len(a) + len(b) < 40 for (a, b), _ in pairs])
        self.assertLessEqual(short_share(0.0).sum(), 2)  # only a document's last chunk can be short
        self.assertBetween(short_share(0.5).mean(), 0.2, 0.55)


class NspTest(tf.test.TestCase):

    def test_labels_and_sources(self):
        docs = synthetic_docs(150, seed=2)
        streams = doc_stream(docs)
        ds = sentence_pairs.pair_examples(item_dataset(docs), 48, CLS, SEP, PAD, seed=3, task="nsp")
        labels = []
        for ex, segs, label in ds.as_numpy_iterator():
            a, b = split_pair(ex, segs)
            da, db = {v // 10000 for v in a}, {v // 10000 for v in b}
            self.assertEqual(len(da), 1)
            self.assertEqual(len(db), 1)
            if label == 1:
                self.assertNotEqual(da, db)  # random next: another document
            else:
                self.assertEqual(da, db)
                self.assertLess(max(a), min(b))
                self.assertTrue(is_contiguous(b, streams[b[0] // 10000]))
            labels.append(int(label))
        self.assertGreater(len(labels), 300)
        self.assertNear(np.mean(labels), 0.5, 0.08)

    def test_bad_task(self):
        with self.assertRaisesRegex(ValueError, "task"):
            sentence_pairs.pair_examples(item_dataset(synthetic_docs(2, 0)), 32, CLS, SEP, PAD, 0, task="xyz")


def truncate_reference(la, lb, max_tokens):
    """google-research/bert truncate_seq_pair, lengths only."""
    while la + lb > max_tokens:
        if la > lb:
            la -= 1
        else:
            lb -= 1
    return la, lb


class TruncateTest(tf.test.TestCase):

    def test_matches_reference_lengths_and_front_back_split(self):
        fronts = []
        for la in range(0, 30, 3):
            for lb in range(0, 30, 4):
                for m in (5, 17, 40):
                    a, b = sentence_pairs.truncate_pair(tf.range(la), tf.range(100, 100 + lb), m,
                                                        masking.example_seed(0, la, lb * 100 + m))
                    self.assertEqual((int(tf.size(a)), int(tf.size(b))), truncate_reference(la, lb, m))
                    a = a.numpy()
                    if a.size:
                        self.assertAllEqual(a, np.arange(a[0], a[0] + a.size))  # contiguous slice
                        if la - a.size >= 6:
                            fronts.append(a[0] / (la - a.size))
        self.assertNear(np.mean(fronts), 0.5, 0.1)


if __name__ == "__main__":
    tf.test.main()
