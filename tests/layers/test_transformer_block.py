import numpy as np
import tensorflow as tf

import numpy_reference as ref
from plm_tf.layers.transformer_block import AttentionSublayer, FeedForwardSublayer, TransformerBlock


def _pair(dense):
    return dense.kernel.numpy(), dense.bias.numpy()


def _reference_block(block, x, mask, epsilon, gelu):
    attn = block.attention_sublayer
    attended = ref.self_attention(
        x, mask, _pair(attn.attention.query), _pair(attn.attention.key), _pair(attn.attention.value),
        _pair(attn.attention.output_dense), block.num_heads,
    )
    h = ref.layer_norm(x + attended, attn.layer_norm.gamma.numpy(), attn.layer_norm.beta.numpy(), epsilon)
    ffn = block.feed_forward_sublayer
    inner = gelu(ref.dense(h, *_pair(ffn.intermediate)))
    out = ref.dense(inner, *_pair(ffn.output_dense))
    return ref.layer_norm(h + out, ffn.layer_norm.gamma.numpy(), ffn.layer_norm.beta.numpy(), epsilon)


class TransformerBlockTest(tf.test.TestCase):
    def test_post_layer_norm_block_matches_reference(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2, 6, 16)).astype("float32")
        mask = np.array([[1] * 6, [1, 1, 1, 1, 0, 0]], "float32")
        for activation, gelu, epsilon in (("gelu_exact", ref.gelu_exact, 1e-5), ("gelu_tanh", ref.gelu_tanh, 1e-12)):
            block = TransformerBlock(
                hidden_size=16, num_heads=2, intermediate_size=32, activation=activation,
                dropout_rate=0.0, attention_dropout_rate=0.0, layer_norm_epsilon=epsilon,
            )
            out = block(x, mask)
            self.assertAllClose(out, _reference_block(block, x, mask, epsilon, gelu), atol=1e-4)

    def test_dropout_only_in_training(self):
        block = TransformerBlock(hidden_size=8, num_heads=2, intermediate_size=16, dropout_rate=0.5)
        x = np.random.default_rng(1).normal(size=(1, 4, 8)).astype("float32")
        self.assertAllClose(block(x), block(x))
        self.assertNotAllClose(block(x, training=True), block(x))

    def test_shared_sublayer_is_the_same_object(self):
        shared = FeedForwardSublayer(hidden_size=8, intermediate_size=16)
        first = TransformerBlock(hidden_size=8, num_heads=2, intermediate_size=16, feed_forward_sublayer=shared)
        second = TransformerBlock(hidden_size=8, num_heads=2, intermediate_size=16, feed_forward_sublayer=shared)
        first.build((None, None, 8))
        second.build((None, None, 8))
        self.assertIs(first.feed_forward_sublayer.intermediate.kernel, second.feed_forward_sublayer.intermediate.kernel)
        self.assertIsNot(first.attention_sublayer.attention.query.kernel, second.attention_sublayer.attention.query.kernel)

    def test_config_round_trips(self):
        for layer in (
            TransformerBlock(hidden_size=8, num_heads=2, intermediate_size=16, activation="gelu_tanh"),
            AttentionSublayer(hidden_size=8, num_heads=2, layer_norm_epsilon=1e-5),
            FeedForwardSublayer(hidden_size=8, intermediate_size=16, activation="relu"),
        ):
            clone = type(layer).from_config(layer.get_config())
            self.assertEqual(clone.get_config(), layer.get_config())


if __name__ == "__main__":
    tf.test.main()
