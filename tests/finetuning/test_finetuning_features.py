"""In-graph encoding: layouts per tokenizer family, segment ids, padding and BERT's pair truncation."""
import numpy as np
import tensorflow as tf

from plm_tf.data import pipelines
from plm_tf.export import serving
from plm_tf.finetuning import features


def _truncate_seq_pair_reference(len_a, len_b, max_length):
    """google-research/bert run_classifier._truncate_seq_pair, on lengths."""
    while len_a + len_b > max_length:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


class TruncationTest(tf.test.TestCase):

    def test_closed_form_matches_bert_loop(self):
        grid = [(a, b) for a in range(13) for b in range(13)]
        len_a = tf.constant([a for a, _ in grid], tf.int64)
        len_b = tf.constant([b for _, b in grid], tf.int64)
        for budget in range(2, 16):
            new_a, new_b = serving.truncation_lengths(len_a, len_b, budget)
            expected = [_truncate_seq_pair_reference(a, b, budget) for a, b in grid]
            self.assertEqual(list(zip(new_a.numpy().tolist(), new_b.numpy().tolist())), expected,
                             msg=f"budget={budget}")


class EncodeTest(tf.test.TestCase):

    def test_wordpiece_pair_layout(self):
        tok = pipelines.load_tokenizer("wordpiece")
        a = tok.tokenize(tf.constant(["emma was happy"])).to_list()[0]
        b = tok.tokenize(tf.constant(["she smiled"])).to_list()[0]
        out = features.encode_texts(tok, tf.constant(["emma was happy"]), tf.constant(["she smiled"]), seq_len=16)
        expected = [tok.cls_id] + a + [tok.sep_id] + b + [tok.sep_id]
        n = len(expected)
        self.assertEqual(out["input_ids"].numpy()[0].tolist(), expected + [tok.pad_id] * (16 - n))
        self.assertEqual(out["input_mask"].numpy()[0].tolist(), [1] * n + [0] * (16 - n))
        self.assertEqual(out["segment_ids"].numpy()[0].tolist(),
                         [0] * (len(a) + 2) + [1] * (len(b) + 1) + [0] * (16 - n))

    def test_roberta_pair_layout_and_single_types(self):
        tok = pipelines.load_tokenizer("bpe")
        a = tok.tokenize(tf.constant(["Emma was happy"])).to_list()[0]
        b = tok.tokenize(tf.constant(["She smiled"])).to_list()[0]
        out = features.encode_texts(tok, tf.constant(["Emma was happy"]), tf.constant(["She smiled"]), seq_len=20)
        expected = [tok.cls_id] + a + [tok.sep_id, tok.sep_id] + b + [tok.sep_id]
        self.assertEqual(out["input_ids"].numpy()[0, :len(expected)].tolist(), expected)
        self.assertAllEqual(out["segment_ids"], tf.zeros_like(out["segment_ids"]))
        self.assertEqual(int(tf.reduce_sum(out["input_mask"])), len(expected))

    def test_single_truncation_and_batch(self):
        tok = pipelines.load_tokenizer("wordpiece")
        texts = ["the " * 30, "emma"]
        out = features.encode_texts(tok, tf.constant(texts), None, seq_len=8)
        ids = out["input_ids"].numpy()
        self.assertEqual(ids.shape, (2, 8))
        self.assertEqual(ids[0, 0], tok.cls_id)
        self.assertEqual(ids[0, 7], tok.sep_id)  # truncated to 6 text tokens + [CLS] + [SEP]
        self.assertEqual(out["input_mask"].numpy()[1].sum(), 2 + len(tok.tokenize(tf.constant(["emma"])).to_list()[0]))
        self.assertAllEqual(out["segment_ids"], tf.zeros_like(out["segment_ids"]))

    def test_pair_truncation_in_graph(self):
        tok = pipelines.load_tokenizer("wordpiece")
        out = features.encode_texts(tok, tf.constant(["the " * 10]), tf.constant(["emma " * 3]), seq_len=10)
        segments = out["segment_ids"].numpy()[0]
        ids = out["input_ids"].numpy()[0]
        # budget 7: shorter (3) ≤ 3, so B keeps 3 and A gets 4 → [CLS] 4 [SEP] 3 [SEP] = 10 tokens.
        self.assertEqual(int(out["input_mask"].numpy()[0].sum()), 10)
        self.assertEqual(segments.tolist(), [0] * 6 + [1] * 4)
        self.assertEqual(ids[5], tok.sep_id)

    def test_encode_split_chunks(self):
        from plm_tf.finetuning.tasks import Split

        tok = pipelines.load_tokenizer("wordpiece")
        split = Split([f"emma {i}" for i in range(5)], [f"walk {i}" for i in range(5)], ["0"] * 5)
        chunked = features.encode_split(tok, split, seq_len=12, batch_size=2)
        whole = features.encode_texts(tok, tf.constant(split.text_a), tf.constant(split.text_b), 12)
        for key in ("input_ids", "input_mask", "segment_ids"):
            np.testing.assert_array_equal(chunked[key], whole[key].numpy())

    def test_too_short_seq_len(self):
        tok = pipelines.load_tokenizer("wordpiece")
        with self.assertRaisesRegex(ValueError, "no room"):
            features.encode_texts(tok, tf.constant(["a"]), tf.constant(["b"]), seq_len=4)


if __name__ == "__main__":
    tf.test.main()
