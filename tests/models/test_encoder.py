import numpy as np
import tensorflow as tf

from plm_tf.models.encoder import TransformerEncoder
from plm_tf.models.parameter_counts import count_variables

TINY = dict(vocab_size=97, hidden_size=32, num_layers=4, num_heads=4, intermediate_size=64, max_position_embeddings=64)


def _inputs(ids, mask, segments=None):
    ids = np.asarray(ids, "int32")
    return {
        "input_ids": ids,
        "input_mask": np.asarray(mask, "int32"),
        "segment_ids": np.zeros_like(ids) if segments is None else np.asarray(segments, "int32"),
    }


class EncoderOutputsTest(tf.test.TestCase):
    def test_outputs_and_shapes(self):
        encoder = TransformerEncoder(**TINY, embedding_size=16)
        out = encoder(_inputs(np.ones((2, 7)), np.ones((2, 7))))
        self.assertEqual(out["sequence_output"].shape, (2, 7, 32))
        self.assertEqual(out["pooled_output"].shape, (2, 32))
        self.assertLen(out["encoder_outputs"], 4)
        self.assertAllClose(out["encoder_outputs"][-1], out["sequence_output"])
        self.assertIsNotNone(encoder.embedding_projection)
        no_pooler = TransformerEncoder(**TINY, use_pooler=False)
        self.assertNotIn("pooled_output", no_pooler(_inputs(np.ones((1, 3)), np.ones((1, 3)))))
        self.assertIsNone(no_pooler.embedding_projection)

    def test_appending_padding_leaves_real_positions_unchanged(self):
        rng = np.random.default_rng(0)
        for share in ("none", "all"):
            encoder = TransformerEncoder(**TINY, embedding_size=16, share=share)
            ids = rng.integers(5, 97, size=(2, 6))
            short = encoder(_inputs(ids, [[1] * 6, [1, 1, 1, 1, 0, 0]]))
            padded_ids = np.concatenate([ids, rng.integers(0, 97, size=(2, 5))], axis=1)
            padded = encoder(_inputs(padded_ids, [[1] * 6 + [0] * 5, [1, 1, 1, 1] + [0] * 7]))
            self.assertAllClose(padded["sequence_output"][0, :6], short["sequence_output"][0], atol=1e-5)
            self.assertAllClose(padded["sequence_output"][1, :4], short["sequence_output"][1, :4], atol=1e-5)
            self.assertAllClose(padded["pooled_output"], short["pooled_output"], atol=1e-5)

    def test_segment_ids_change_the_output(self):
        encoder = TransformerEncoder(**TINY)
        ids = np.full((1, 4), 7)
        a = encoder(_inputs(ids, np.ones((1, 4)), [[0, 0, 0, 0]]))["sequence_output"]
        b = encoder(_inputs(ids, np.ones((1, 4)), [[0, 0, 1, 1]]))["sequence_output"]
        self.assertNotAllClose(a, b)

    def test_config_round_trip_gives_same_function(self):
        encoder = TransformerEncoder(
            **dict(TINY, max_position_embeddings=66), embedding_size=16, share="all", num_hidden_groups=2,
            activation="gelu_tanh", layer_norm_epsilon=1e-5, position_offset=2,
        )
        clone = TransformerEncoder.from_config(encoder.get_config())
        encoder.build()
        clone.build()
        self.assertEqual(clone.get_config(), encoder.get_config())
        clone.set_weights(encoder.get_weights())
        inputs = _inputs(np.arange(10).reshape(2, 5) + 5, np.ones((2, 5)))
        self.assertAllClose(clone(inputs)["sequence_output"], encoder(inputs)["sequence_output"])

    def test_bad_sharing_arguments(self):
        with self.assertRaisesRegex(ValueError, "share='both' is not one of"):
            TransformerEncoder(**TINY, share="both")
        with self.assertRaisesRegex(ValueError, "only apply with share='all'"):
            TransformerEncoder(**TINY, num_hidden_groups=2)


class SharingTest(tf.test.TestCase):
    def test_all_shared_layers_are_the_same_variables(self):
        encoder = TransformerEncoder(**TINY, share="all")
        encoder.build()
        self.assertEqual(encoder.block_schedule, [0, 0, 0, 0])
        self.assertLen(encoder.blocks, 1)
        unshared = TransformerEncoder(**TINY)
        unshared.build()
        per_layer = count_variables(unshared.blocks[0])
        self.assertEqual(count_variables(unshared) - count_variables(encoder), 3 * per_layer)

    def test_albert_groups_follow_int_i_over_l_times_g(self):
        encoder = TransformerEncoder(**TINY, share="all", num_hidden_groups=2, inner_group_num=2)
        # layer i uses group int(i / 4 * 2): 0, 0, 1, 1; each group runs its 2 inner blocks in order.
        self.assertEqual(encoder.block_schedule, [0, 1, 0, 1, 2, 3, 2, 3])
        out = encoder(_inputs(np.ones((1, 3)), np.ones((1, 3))))
        self.assertLen(out["encoder_outputs"], 8)

    def test_attention_only_and_ffn_only_sharing(self):
        for share, shared_attr, own_attr in (
            ("attention", "attention_sublayer", "feed_forward_sublayer"),
            ("ffn", "feed_forward_sublayer", "attention_sublayer"),
        ):
            encoder = TransformerEncoder(**TINY, share=share)
            encoder.build()
            first, last = encoder.blocks[0], encoder.blocks[-1]
            self.assertIs(getattr(first, shared_attr), getattr(last, shared_attr))
            self.assertIsNot(getattr(first, own_attr), getattr(last, own_attr))
            shared_ids = {id(v) for v in getattr(first, shared_attr).trainable_variables}
            self.assertEqual(shared_ids, {id(v) for v in getattr(last, shared_attr).trainable_variables})
            # Training moves the shared sublayer as one: every layer sees the same weights after a step.
            out = encoder(_inputs(np.ones((1, 3)), np.ones((1, 3))))["sequence_output"]
            self.assertEqual(out.shape, (1, 3, 32))


if __name__ == "__main__":
    tf.test.main()
