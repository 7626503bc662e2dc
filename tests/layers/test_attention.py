import keras
import numpy as np
import tensorflow as tf

import numpy_reference as ref
from plm_tf.layers.attention import MultiHeadSelfAttention
from plm_tf.layers.layer_norm import LayerNorm


def _weights(dense):
    return dense.kernel.numpy(), dense.bias.numpy()


class MultiHeadSelfAttentionTest(tf.test.TestCase):
    def test_matches_numpy_reference_with_padding(self):
        rng = np.random.default_rng(0)
        layer = MultiHeadSelfAttention(hidden_size=16, num_heads=4, attention_dropout_rate=0.0)
        x = rng.normal(size=(2, 5, 16)).astype("float32")
        mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], "int32")
        layer.build(x.shape)
        for dense in (layer.query, layer.key, layer.value, layer.output_dense):
            dense.bias.assign(rng.normal(size=16).astype("float32") * 0.1)
        expected = ref.self_attention(
            x, mask.astype("float32"), _weights(layer.query), _weights(layer.key), _weights(layer.value),
            _weights(layer.output_dense), num_heads=4,
        )
        self.assertAllClose(layer(x, mask), expected, atol=1e-5)

    def test_padded_keys_get_no_attention(self):
        layer = MultiHeadSelfAttention(hidden_size=8, num_heads=2, attention_dropout_rate=0.0)
        rng = np.random.default_rng(1)
        x = rng.normal(size=(1, 4, 8)).astype("float32")
        mask = np.array([[1, 1, 0, 0]], "int32")
        changed = x.copy()
        changed[:, 2:] = rng.normal(size=(1, 2, 8))  # what sits at padded positions must not matter
        out, out_changed = layer(x, mask), layer(changed, mask)
        self.assertAllClose(out[:, :2], out_changed[:, :2], atol=1e-6)

    def test_rejects_indivisible_heads(self):
        with self.assertRaisesRegex(ValueError, "not divisible"):
            MultiHeadSelfAttention(hidden_size=10, num_heads=3)

    def test_config_round_trip(self):
        layer = MultiHeadSelfAttention(hidden_size=8, num_heads=2, attention_dropout_rate=0.2, name="attn")
        clone = MultiHeadSelfAttention.from_config(layer.get_config())
        self.assertEqual(clone.get_config(), layer.get_config())


class LayerNormTest(tf.test.TestCase):
    def test_keras_layer_norm_matches_formula_at_both_epsilons(self):
        rng = np.random.default_rng(2)
        # Rows with variance ~1e-6 make ε = 1e-5 (fairseq) and ε = 1e-12 (Google) give visibly different outputs.
        x = np.concatenate([rng.normal(size=(3, 7, 12)) * 3 + 1, rng.normal(size=(3, 7, 12)) * 1e-3]).astype("float32")
        outputs = []
        for epsilon in (1e-12, 1e-5):
            layer = LayerNorm(epsilon=epsilon)
            layer.build(x.shape)
            layer.gamma.assign(rng.normal(size=12).astype("float32"))
            layer.beta.assign(rng.normal(size=12).astype("float32"))
            expected = ref.layer_norm(x.astype("float64"), layer.gamma.numpy(), layer.beta.numpy(), epsilon)
            self.assertAllClose(layer(x), expected, atol=1e-4)
            outputs.append(np.asarray(layer(x)) - layer.beta.numpy())
        self.assertGreater(float(np.abs(outputs[0] - outputs[1]).max()), 0.1)


if __name__ == "__main__":
    tf.test.main()
