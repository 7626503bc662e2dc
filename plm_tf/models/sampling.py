"""Gumbel-max sampling for ELECTRA's generator, and splicing the samples into the input.

google-research/electra `pretrain/pretrain_helpers.py` `sample_from_softmax`:
    noise = −log(−log(U + 1e-9) + 1e-9),  sample = argmax(logits / temperature + noise)
The sample is a constant for the discriminator (`tf.stop_gradient` in `_get_fake_data`).

These use `tf.random.stateless_uniform` because Keras 3 random ops cannot take a tensor seed: the seed is a
function of (run seed, step, replica), so a resumed run draws exactly the samples an uninterrupted one would.
"""
import tensorflow as tf
from keras import ops


def gumbel_max_sample(logits, seed, temperature=1.0):
    """logits float [B, P, V], seed int32 [2] → sampled ids int32 [B, P] (no gradient)."""
    logits = tf.cast(logits, tf.float32) / temperature
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed=seed, dtype=tf.float32)
    gumbel = -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)
    return tf.stop_gradient(tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32))


def scatter_at_positions(input_ids, positions, values, weights):
    """Writes `values` at `positions` where `weights` > 0.

    Args:
        input_ids: int [B, T].
        positions: int [B, P] (padding rows have weight 0 and are ignored).
        values: int [B, P].
        weights: float [B, P].

    Returns:
        (ids int [B, T] with the values written, written bool [B, T]).
    """
    length = ops.shape(input_ids)[1]
    hits = ops.one_hot(ops.cast(positions, "int32"), length, dtype="int32")  # [B, P, T]
    hits = hits * ops.cast(ops.expand_dims(weights, -1) > 0, "int32")
    written = ops.max(hits, axis=1) > 0
    new_values = ops.max(hits * ops.expand_dims(ops.cast(values, "int32"), -1), axis=1)
    return ops.where(written, new_values, ops.cast(input_ids, "int32")), written
