import keras
import numpy as np
import tensorflow as tf

import numpy_reference as ref
from plm_tf.layers.layer_norm import LayerNorm


def _build_pair(hidden, epsilon, seed=0):
    rng = np.random.default_rng(seed)
    ours, keras_norm = LayerNorm(epsilon=epsilon), keras.layers.LayerNormalization(epsilon=epsilon)
    for layer in (ours, keras_norm):
        layer.build((None, None, hidden))
    gamma, beta = rng.normal(size=hidden).astype("float32"), rng.normal(size=hidden).astype("float32")
    for layer in (ours, keras_norm):
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    return ours, keras_norm


class LayerNormTest(tf.test.TestCase):
    def test_forward_matches_float64_reference(self):
        rng = np.random.default_rng(1)
        x = (rng.normal(size=(3, 7, 16)) * 4 + 2).astype("float32")
        layer, _ = _build_pair(16, 1e-12)
        expected = ref.layer_norm(x.astype("float64"), layer.gamma.numpy(), layer.beta.numpy(), 1e-12)
        self.assertAllClose(layer(x), expected, atol=1e-5)

    def test_gradients_match_keras_autodiff(self):
        # The closed-form backward against TensorFlow differentiating Keras's LayerNormalization, for the input
        # and both variables, with a non-uniform upstream gradient and a near-constant row (variance ~1e-6).
        rng = np.random.default_rng(2)
        x = np.concatenate([rng.normal(size=(2, 5, 24)) * 3 + 1, rng.normal(size=(1, 5, 24)) * 1e-3])
        x = tf.constant(x.astype("float32"))
        upstream = tf.constant(rng.normal(size=(3, 5, 24)).astype("float32"))
        for epsilon in (1e-12, 1e-5):
            ours, keras_norm = _build_pair(24, epsilon, seed=3)
            gradients = []
            for layer in (ours, keras_norm):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = layer(x)
                    loss = tf.reduce_sum(y * upstream)
                gradients.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
            self.assertAllClose(ours(x), keras_norm(x), atol=1e-5)
            for got, expected in zip(*gradients):
                self.assertAllClose(got, expected, rtol=1e-4, atol=1e-3 if epsilon == 1e-12 else 1e-5)

    def test_input_gradient_is_orthogonal_to_shift_and_scale(self):
        # LayerNorm is invariant to adding a constant to a row and to scaling it, so ∂x sums to 0 over the
        # row and is orthogonal to x̂.
        x = tf.random.normal([4, 32], seed=1)
        layer, _ = _build_pair(32, 1e-12)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * tf.random.normal([4, 32], seed=2))
        d_x = tape.gradient(loss, x)
        self.assertAllClose(tf.reduce_sum(d_x, -1), tf.zeros([4]), atol=1e-4)
        centered = x - tf.reduce_mean(x, -1, keepdims=True)
        self.assertAllClose(tf.reduce_sum(d_x * centered, -1), tf.zeros([4]), atol=1e-3)

    def test_mixed_bfloat16_computes_in_float32(self):
        layer = LayerNorm(epsilon=1e-12, dtype="mixed_bfloat16")
        x = tf.constant(np.random.default_rng(4).normal(size=(2, 3, 64)) * 100 + 1000, tf.bfloat16)
        y = layer(x)
        self.assertEqual(y.dtype, tf.bfloat16)
        self.assertEqual(layer.gamma.dtype, "float32")
        reference = ref.layer_norm(tf.cast(x, tf.float64).numpy(), 1.0, 0.0, 1e-12)
        self.assertAllClose(tf.cast(y, tf.float32), reference, atol=2e-2)

    def test_same_variables_and_config_as_keras(self):
        layer, keras_norm = _build_pair(8, 1e-12)
        self.assertEqual([v.path.split("/")[-1] for v in layer.weights], ["gamma", "beta"])
        self.assertEqual([v.shape for v in layer.weights], [v.shape for v in keras_norm.weights])
        clone = LayerNorm.from_config(layer.get_config())
        self.assertEqual(clone.epsilon, 1e-12)
        with self.assertRaisesRegex(ValueError, "last axis"):
            LayerNorm(axis=1)
        with self.assertRaisesRegex(ValueError, "last axis"):
            LayerNorm(center=False)


if __name__ == "__main__":
    tf.test.main()
