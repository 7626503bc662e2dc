import numpy as np
import tensorflow as tf

import numpy_reference as ref
from plm_tf.layers import activations


class GeluTest(tf.test.TestCase):
    def setUp(self):
        self.x = np.linspace(-6.0, 6.0, 241).astype("float32")

    def test_exact_matches_erf_formula(self):
        self.assertAllClose(activations.gelu_exact(self.x), ref.gelu_exact(self.x), atol=1e-6)

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
