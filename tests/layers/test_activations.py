import numpy as np
import tensorflow as tf

import numpy_reference as ref
from plm_tf.layers import activations


class GeluTest(tf.test.TestCase):
    def setUp(self):
        self.x = np.linspace(-6.0, 6.0, 241).astype("float32")

    def test_exact_matches_erf_formula(self):
        self.assertAllClose(activations.gelu_exact(self.x), ref.gelu_exact(self.x), atol=1e-6)

    def test_exact_gradient_matches_finite_differences_and_autodiff(self):
        # gelu_exact's backward is written out (Φ(x) + x·φ(x)); check it against central differences of the
        # float64 formula and against TensorFlow differentiating the erf expression itself.
        x = tf.constant(self.x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            ours = activations.gelu_exact(x)
            autodiff = 0.5 * x * (1.0 + tf.math.erf(x / np.sqrt(2.0)))
        step = 1e-4
        x64 = self.x.astype("float64")
        finite = (ref.gelu_exact(x64 + step) - ref.gelu_exact(x64 - step)) / (2 * step)
        self.assertAllClose(tape.gradient(ours, x), finite, atol=1e-5)
        self.assertAllClose(tape.gradient(ours, x), tape.gradient(autodiff, x), atol=1e-6)
        # The derivative exceeds 1 just above 0 (max ≈ 1.129 at x ≈ 2.4) and dips below 0 for x < 0.
        self.assertGreater(float(tf.reduce_max(tape.gradient(ours, x))), 1.12)
        self.assertLess(float(tf.reduce_min(tape.gradient(ours, x))), -0.12)

    def test_exact_gradient_in_bfloat16(self):
        x = tf.constant(self.x, tf.bfloat16)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = activations.gelu_exact(x)
        gradient = tape.gradient(y, x)
        self.assertEqual(gradient.dtype, tf.bfloat16)
        x64 = tf.cast(x, tf.float64).numpy()
        finite = (ref.gelu_exact(x64 + 1e-5) - ref.gelu_exact(x64 - 1e-5)) / 2e-5
        self.assertAllClose(tf.cast(gradient, tf.float32), finite, atol=2e-2)

    def test_tanh_matches_tanh_formula(self):
        self.assertAllClose(activations.gelu_tanh(self.x), ref.gelu_tanh(self.x), atol=1e-6)

    def test_the_two_forms_differ(self):
        # The approximation error peaks near |x| ≈ 2 at about 2e-4: large enough that the flavour matters
        # for checkpoint parity, which is why each family's gin file names one.
        difference = np.abs(activations.gelu_exact(self.x) - activations.gelu_tanh(self.x))
        self.assertGreater(float(difference.max()), 1e-4)
        self.assertLess(float(difference.max()), 1e-3)

    def test_lookup_by_name_and_unknown_name(self):
        self.assertIs(activations.get_activation("gelu_tanh"), activations.gelu_tanh)
        self.assertEqual(activations.activation_name(activations.gelu_exact), "gelu_exact")
        with self.assertRaisesRegex(ValueError, "Unknown activation 'gleu'"):
            activations.get_activation("gleu")


if __name__ == "__main__":
    tf.test.main()
