"""Packing invariants of RoBERTa FULL-/DOC-SENTENCES and ELECTRA segments (plm_tf.data.packing)."""
import numpy as np
import tensorflow as tf

from plm_tf.data import corpus
from plm_tf.data import masking
from plm_tf.data import packing

PAD, CLS, SEP = 0, 1, 2


def synthetic_docs(num_docs=40, seed=0, max_lines=9, max_len=40):
    """Documents of lines; token 10000*d + 100*l + k is unique to (document d, line l, position k)."""
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


def unpad(x):
    return [int(v) for v in x if v != PAD]


class RobertaPackingTest(tf.test.TestCase):

    def test_full_sentences(self):
        docs = synthetic_docs()
        t = 64
        examples = [unpad(ex) for ex, _ in packing.roberta_examples(item_dataset(docs), t, CLS, SEP, PAD, "full")
                    .as_numpy_iterator()]
        expected = []
        for doc in docs:
            for line in doc:
                expected += line + [SEP]
            expected.append(SEP)  # the extra separator at each document boundary
        stream = []
        for ex in examples:
            self.assertEqual(ex[0], CLS)
            self.assertLessEqual(len(ex), t)
            self.assertEqual(ex[-1], SEP)  # every block ends with a whole line's </s>
            stream += ex[1:]
        self.assertEqual(stream, expected)  # nothing lost, whole lines in order, boundaries marked
        # Blocks are full in fairseq's 'complete' sense: the next line would not have fit.
        lines = []
        for doc in docs:
            lines += [len(l) + 1 for l in doc] + [1]
        self.assertLess(len(examples), sum(lines) / ((t - 1) / 2))
        crossing = sum(1 for ex in examples if len({v // 10000 for v in ex if v > 100}) > 1)
        self.assertGreater(crossing, 0)

    def test_doc_sentences(self):
        docs = synthetic_docs(seed=1)
        t = 48
        examples = [unpad(ex) for ex, _ in packing.roberta_examples(item_dataset(docs), t, CLS, SEP, PAD, "doc")
                    .as_numpy_iterator()]
        expected = []
        for doc in docs:
            for line in doc:
                expected += line + [SEP]
        stream = []
        for ex in examples:
            self.assertLessEqual(len(ex), t)
            self.assertEqual(len({v // 10000 for v in ex if v > 100}), 1)  # never crosses a document
            self.assertNotIn([SEP, SEP], [ex[i:i + 2] for i in range(len(ex) - 1)])
            stream += ex[1:]
        self.assertEqual(stream, expected)

    def test_segment_ids_zero_and_bad_mode(self):
        for _, segs in packing.roberta_examples(item_dataset(synthetic_docs(3)), 32, CLS, SEP, PAD).take(3):
            self.assertAllEqual(segs, np.zeros(32))
        with self.assertRaisesRegex(ValueError, "mode"):
            packing.roberta_examples(item_dataset(synthetic_docs(3)), 32, CLS, SEP, PAD, "none")


class ElectraPackingTest(tf.test.TestCase):

    def test_structure(self):
        docs = synthetic_docs(120, seed=2, max_lines=12)
        t = 64
        ds = packing.electra_examples(item_dataset(docs), t, CLS, SEP, PAD, seed=3)
        n = single = 0
        lengths = []
        for ex, segs in ds.as_numpy_iterator():
            n += 1
            real = ex != PAD
            k = int(real.sum())
            self.assertTrue(real[:k].all())
            lengths.append(k)
            self.assertEqual(ex[0], CLS)
            self.assertEqual(ex[k - 1], SEP)
            seps = np.flatnonzero(ex == SEP)
            self.assertIn(len(seps), (1, 2))
            self.assertAllEqual(segs[:seps[0] + 1], np.zeros(seps[0] + 1))
            self.assertAllEqual(segs[seps[0] + 1:k], np.ones(k - seps[0] - 1))
            self.assertAllEqual(segs[k:], np.zeros(t - k))
            body = [v for v in ex[:k] if v > 100]
            self.assertEqual(len({v // 10000 for v in body}), 1)  # an example never spans two documents
            single += len(seps) == 1
            first = [v for v in ex[1:seps[0]]]
            self.assertEqual(first, sorted(first))  # first segment keeps corpus order
        self.assertGreater(n, 100)
        self.assertGreater(single, 0)
        self.assertLess(single, n)
        self.assertLessEqual(max(lengths), t)

    def test_single_segment_rate(self):
        # Lines of 10 tokens, target 64: every example has >= 2 lines; p(single segment) = 0.1, and the
        # random-target path (p = 0.05) cannot add single-segment examples beyond one-line chunks.
        docs = [[[10000 * d + 100 * l + k for k in range(10)] for l in range(400)] for d in range(1, 4)]
        ds = packing.electra_examples(item_dataset(docs), 64, CLS, SEP, PAD, seed=5)
        singles = []
        for ex, _ in ds.as_numpy_iterator():
            if (ex != PAD).sum() > 20:
                singles.append(np.sum(ex == SEP) == 1)
        self.assertGreater(len(singles), 150)
        self.assertNear(np.mean(singles), 0.1, 0.05)

    def test_seed_and_epoch_change_construction(self):
        docs = synthetic_docs(60, seed=4)
        def run(seed, epoch):
            return [ex.tolist() for ex, _ in packing.electra_examples(
                item_dataset(docs), 64, CLS, SEP, PAD, seed=seed, epoch=epoch).as_numpy_iterator()]
        self.assertEqual(run(1, 0), run(1, 0))
        self.assertNotEqual(run(1, 0), run(1, 1))


class ElectraReferenceTest(tf.test.TestCase):
    """Compares with a line-by-line port of google-research/electra `ExampleBuilder`, fed the same draws."""

    def test_matches_example_builder(self):
        docs = synthetic_docs(40, seed=7, max_lines=12, max_len=50)
        t, seed, epoch = 48, 9, 2

        class Draws:
            """The stateless draws `electra_examples` makes for the example completed at item `index`."""
            def __init__(self, index):
                s = masking.example_seed(seed, epoch, index, masking.BUILD_STREAM)
                self.s_single, self.s_coin, self.s_short, self.s_len = masking._split(s, 4)

        def reference():
            out, sentences, length, target = [], [], 0, t
            index = 0

            def create(index):
                nonlocal sentences, length, target
                d = Draws(index)
                single = float(tf.random.stateless_uniform([], d.s_single)) < 0.1
                first_target = 100000 if single else (target - 3) // 2
                coins = tf.random.stateless_uniform([len(sentences)], d.s_coin).numpy() < 0.5
                first, second = [], []
                for i, sentence in enumerate(sentences):
                    if (len(first) == 0 or len(first) + len(sentence) < first_target or
                            (len(second) == 0 and len(first) < first_target and coins[i])):
                        first += sentence
                    else:
                        second += sentence
                first = first[:t - 2]
                second = second[:max(0, t - len(first) - 3)]
                sentences, length = [], 0
                if float(tf.random.stateless_uniform([], d.s_short)) < 0.05:
                    target = int(tf.random.stateless_uniform([], d.s_len, 5, t + 1, dtype=tf.int32))
                else:
                    target = t
                ids = [CLS] + first + [SEP] + (second + [SEP] if second else [])
                return ids + [PAD] * (t - len(ids))

            for doc in docs:
                for line in doc:
                    sentences.append(line)
                    length += len(line)
                    if length >= target:
                        out.append(create(index))
                    index += 1
                if length != 0:  # the empty line that ends a document
                    out.append(create(index))
                index += 1
            return out

        got = [ex.tolist() for ex, _ in packing.electra_examples(
            item_dataset(docs), t, CLS, SEP, PAD, seed=seed, epoch=epoch).as_numpy_iterator()]
        self.assertEqual(got, reference())


class LongLineTest(tf.test.TestCase):

    def test_split_long_rows(self):
        ids = tf.ragged.constant([[1] * 12, [], [2] * 5], dtype=tf.int32)
        out, src = corpus.split_long_rows(ids, 5)
        self.assertAllEqual(out.row_lengths(), [5, 5, 2, 0, 5])
        self.assertAllEqual(src, [0, 0, 0, 1, 2])


if __name__ == "__main__":
    tf.test.main()
