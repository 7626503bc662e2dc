import numpy as np
import tensorflow as tf

import numpy_reference as ref
from plm_tf.layers.classification_head import ClassificationHead, sentence_pair_head
from plm_tf.layers.discriminator_head import ReplacedTokenHead
from plm_tf.layers.masked_lm_head import MaskedLMHead


class MaskedLMHeadTest(tf.test.TestCase):
    def test_matches_reference_and_is_tied_to_the_table(self):
        rng = np.random.default_rng(0)
        head = MaskedLMHead(vocab_size=11, embedding_size=4, activation="gelu_exact")
        table = tf.Variable(rng.normal(size=(11, 4)).astype("float32"))
        sequence = rng.normal(size=(2, 5, 8)).astype("float32")
        positions = np.array([[0, 3], [4, 4]], "int32")
        logits = head(sequence, table, positions)
        head.output_bias.assign(rng.normal(size=11).astype("float32"))
        logits = head(sequence, table, positions)
        gathered = np.stack([sequence[b, positions[b]] for b in range(2)])
        hidden = ref.gelu_exact(ref.dense(gathered, head.dense.kernel.numpy(), head.dense.bias.numpy()))
        hidden = ref.layer_norm(hidden, head.layer_norm.gamma.numpy(), head.layer_norm.beta.numpy(), 1e-12)
        expected = hidden @ table.numpy().T + head.output_bias.numpy()
        self.assertAllClose(logits, expected, atol=1e-5)
        # Tied: the loss reaches the shared table, and the head owns no [V, E] matrix of its own.
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(head(sequence, table, positions))
        self.assertIsNotNone(tape.gradient(loss, table))
        self.assertEqual(sorted(tuple(v.shape) for v in head.trainable_variables), [(4,), (4,), (4,), (8, 4), (11,)])

    def test_all_positions_when_none_given(self):
        head = MaskedLMHead(vocab_size=7, embedding_size=4)
        out = head(np.zeros((2, 3, 4), "float32"), tf.zeros((7, 4)))
        self.assertEqual(out.shape, (2, 3, 7))

    def test_config_round_trip(self):
        head = MaskedLMHead(vocab_size=7, embedding_size=4, activation="gelu_tanh", layer_norm_epsilon=1e-5)
        self.assertEqual(MaskedLMHead.from_config(head.get_config()).get_config(), head.get_config())


class ReplacedTokenHeadTest(tf.test.TestCase):
    def test_one_logit_per_token_matches_reference(self):
        rng = np.random.default_rng(1)
        head = ReplacedTokenHead(hidden_size=8)
        x = rng.normal(size=(2, 5, 8)).astype("float32")
        logits = head(x)
        hidden = ref.gelu_exact(ref.dense(x, head.dense.kernel.numpy(), head.dense.bias.numpy()))
        expected = ref.dense(hidden, head.prediction.kernel.numpy(), head.prediction.bias.numpy())[..., 0]
        self.assertEqual(logits.shape, (2, 5))
        self.assertAllClose(logits, expected, atol=1e-5)
        self.assertEqual(ReplacedTokenHead.from_config(head.get_config()).get_config(), head.get_config())


class ClassificationHeadTest(tf.test.TestCase):
    def test_pair_head_is_plain_dense_two(self):
        head = sentence_pair_head()
        x = np.random.default_rng(2).normal(size=(3, 8)).astype("float32")
        out = head(x, training=True)  # no dropout in the pretraining pair head
        kernel, bias = head.classifier.kernel.numpy(), head.classifier.bias.numpy()
        self.assertAllClose(out, x @ kernel + bias, atol=1e-5)
        self.assertEqual(head.count_params(), 8 * 2 + 2)

    def test_regression_head_and_dropout(self):
        head = ClassificationHead(num_classes=1, dropout_rate=0.5)
        x = np.ones((4, 16), "float32")
        self.assertEqual(head(x).shape, (4, 1))
        self.assertNotAllClose(head(x, training=True), head(x))
        self.assertEqual(ClassificationHead.from_config(head.get_config()).get_config(), head.get_config())


if __name__ == "__main__":
    tf.test.main()
