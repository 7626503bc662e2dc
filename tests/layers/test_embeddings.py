import numpy as np
import tensorflow as tf

import numpy_reference as ref
from plm_tf.layers.embeddings import TransformerEmbeddings


class TransformerEmbeddingsTest(tf.test.TestCase):
    def test_sum_of_rows_then_layer_norm(self):
        layer = TransformerEmbeddings(
            vocab_size=20, embedding_size=6, max_position_embeddings=10, type_vocab_size=2, dropout_rate=0.0
        )
        ids = np.array([[3, 4, 5], [7, 0, 19]], "int32")
        segments = np.array([[0, 0, 1], [0, 1, 1]], "int32")
        out = layer(ids, segments)
        words = layer.word_embeddings.numpy()[ids]
        positions = layer.position_embeddings.numpy()[:3][None]
        types = layer.token_type_embeddings.numpy()[segments]
        expected = ref.layer_norm(
            words + positions + types, layer.layer_norm.gamma.numpy(), layer.layer_norm.beta.numpy(), 1e-12
        )
        self.assertAllClose(out, expected, atol=1e-5)

    def test_roberta_position_offset_reads_rows_from_two(self):
        layer = TransformerEmbeddings(
            vocab_size=20, embedding_size=4, max_position_embeddings=6, type_vocab_size=1,
            position_offset=2, dropout_rate=0.0,
        )
        ids = np.array([[1, 2, 3, 4]], "int32")
        layer.build()
        # Zero the word and type tables so the output depends only on the position rows used.
        layer.word_embeddings.assign(np.zeros((20, 4), "float32"))
        layer.token_type_embeddings.assign(np.zeros((1, 4), "float32"))
        table = layer.position_embeddings.numpy()
        expected = ref.layer_norm(table[2:6][None], 1.0, 0.0, 1e-12)
        self.assertAllClose(layer(ids), expected, atol=1e-5)
        with self.assertRaisesRegex(ValueError, "exceeds the 6-row position table"):
            layer(np.ones((1, 5), "int32"))

    def test_truncated_normal_initialisation(self):
        layer = TransformerEmbeddings(vocab_size=4000, embedding_size=64)
        layer.build()
        table = layer.word_embeddings.numpy()
        self.assertLessEqual(float(np.abs(table).max()), 0.04 + 1e-6)  # re-drawn beyond 2 stddev
        # The std of a normal truncated at ±2σ is 0.8796σ.
        self.assertAllClose(table.std(), 0.02 * 0.8796, rtol=0.02)

    def test_config_round_trip(self):
        layer = TransformerEmbeddings(vocab_size=50, embedding_size=8, position_offset=2, layer_norm_epsilon=1e-5)
        self.assertEqual(TransformerEmbeddings.from_config(layer.get_config()).get_config(), layer.get_config())


if __name__ == "__main__":
    tf.test.main()
