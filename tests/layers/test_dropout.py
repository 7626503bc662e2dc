import keras
import numpy as np
import tensorflow as tf

from plm_tf.layers.dropout import Dropout, dropout_threshold, keep_scale


class DropoutTest(tf.test.TestCase):
    def test_threshold_and_scale(self):
        self.assertEqual(dropout_threshold(0.1), 6554)
        self.assertEqual(dropout_threshold(0.0), 0)
        self.assertAlmostEqual(keep_scale(0.1), 65536 / (65536 - 6554))
        # Survivors are scaled so that E[output] = input for the rate actually drawn.
        self.assertAlmostEqual((1 - 6554 / 65536) * keep_scale(0.1), 1.0, places=12)

    def test_drop_rate_and_unbiased_mean_over_many_elements(self):
        for rate in (0.1, 0.25, 0.5):
            layer = Dropout(rate, seed=7)
            outputs = layer(tf.ones([64, 4, 128, 129]), training=True).numpy()  # odd last axis: 2.1M elements
            dropped = float((outputs == 0).mean())
            drawn_rate = dropout_threshold(rate) / 65536
            # Binomial standard error over 4.2M elements is < 2.5e-4; allow 5 of them.
            self.assertNear(dropped, drawn_rate, 5 * np.sqrt(drawn_rate * (1 - drawn_rate) / outputs.size))
            self.assertAllClose(np.unique(outputs), [0.0, keep_scale(rate)])
            self.assertNear(float(outputs.mean()), 1.0, 2e-3)

    def test_masks_are_independent_across_positions_and_calls(self):
        layer = Dropout(0.5, seed=3)
        first = layer(tf.ones([256, 256]), training=True).numpy() > 0
        second = layer(tf.ones([256, 256]), training=True).numpy() > 0
        # A fresh mask every call (the seed state advances), uncorrelated with the previous one.
        self.assertNear(float((first == second).mean()), 0.5, 0.01)
        # Neighbouring elements come from the two halves of one 32-bit Philox output: still uncorrelated.
        self.assertNear(float(np.corrcoef(first[:, 0::2].ravel(), first[:, 1::2].ravel())[0, 1]), 0.0, 0.02)

    def test_same_seed_same_masks_and_checkpointed_state(self):
        a, b = Dropout(0.3, seed=11), Dropout(0.3, seed=11)
        x = tf.ones([8, 33])
        self.assertAllEqual(a(x, training=True), b(x, training=True))
        # The seed state is the Keras SeedGenerator's variable, so checkpoints resume the same stream.
        self.assertEqual([v.name for v in a.variables], [v.name for v in keras.layers.Dropout(0.3).variables])
        b.seed_generator.state.assign(a.seed_generator.state)
        self.assertAllEqual(a(x, training=True), b(x, training=True))

    def test_inference_and_zero_rate_are_identity(self):
        x = tf.random.normal([4, 9])
        self.assertAllEqual(Dropout(0.1)(x, training=False), x)
        self.assertAllEqual(Dropout(0.0)(x, training=True), x)

    def test_gradient_is_the_mask(self):
        layer = Dropout(0.2, seed=5)
        x = tf.random.normal([16, 40])
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        mask = (y.numpy() != 0) * keep_scale(0.2)
        self.assertAllClose(tape.gradient(y, x), mask)

    def test_noise_shape_broadcasts_one_mask(self):
        layer = Dropout(0.5, noise_shape=(None, 1, 6), seed=2)
        y = layer(tf.ones([3, 5, 6]), training=True).numpy()
        self.assertAllEqual(y, np.broadcast_to(y[:, :1, :], y.shape))

    def test_bfloat16_and_in_tf_function(self):
        layer = Dropout(0.1, seed=1, dtype="mixed_bfloat16")
        y = tf.function(lambda x: layer(x, training=True))(tf.ones([32, 128], tf.bfloat16))
        self.assertEqual(y.dtype, tf.bfloat16)
        self.assertNear(float(tf.reduce_mean(tf.cast(y == 0, tf.float32))), 0.1, 0.01)

    def test_config_round_trip(self):
        layer = Dropout(0.15, seed=4, name="dropout")
        clone = Dropout.from_config(layer.get_config())
        self.assertEqual((clone.rate, clone.seed, clone.name), (0.15, 4, "dropout"))
        self.assertIs(keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).__class__,
                      Dropout)


if __name__ == "__main__":
    tf.test.main()
