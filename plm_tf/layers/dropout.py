"""Inverted dropout whose mask costs half the random numbers of Keras's.

Same contract as `keras.layers.Dropout` (google-research/bert `dropout`: zero each element with probability
`rate`, scale the survivors so the expectation is unchanged), same seed state (a `SeedGenerator` advanced once
per call, saved in checkpoints), so it is a drop-in replacement with the same variables.

What differs is how the mask is drawn. Keras's TensorFlow backend calls `tf.nn.experimental.stateless_dropout`,
which runs one 32-bit Philox output per element, converts it to a float uniform, compares and selects. On
CPUs the Philox kernel is the cost: in a bfloat16 ELECTRA-Small step the dropout masks took more time than
all the forward matmuls of the feed-forward layers (`scripts/benchmark_compare.py`, profiled). Here each
32-bit Philox output is split into two 16-bit integers and an element is kept when its integer is at least
`round(rate · 2**16)`: half the Philox work, and an integer comparison instead of a float conversion.
`keras.random` has no full-range integer draw, so this layer calls `tf.random` directly.

The drop probability is therefore `round(rate · 65536) / 65536` (0.1 → 0.1000061), and survivors are scaled by
`65536 / (65536 − round(rate · 65536))`, so the expected output equals the input exactly. (Keras's float32 mask
has 2**-23 resolution; its bfloat16 mask only 2**-7, i.e. 0.1 → 0.1016.)
"""
import keras
import tensorflow as tf

_LEVELS = 1 << 16


def dropout_threshold(rate):
    """The 16-bit integer at or above which an element is kept (int in [0, 65536])."""
    return int(round(float(rate) * _LEVELS))


def keep_scale(rate):
    """The factor survivors are multiplied by: 65536 / (65536 − threshold), unbiased for the drawn rate."""
    return _LEVELS / (_LEVELS - dropout_threshold(rate))


def keep_mask(shape, rate, seed, dtype):
    """The scaled keep mask: `dtype` tensor of `shape`, each element 0 (dropped) or `keep_scale(rate)`.

    Args:
        shape: int32 [rank] shape tensor.
        rate: Python float in [0, 1).
        seed: int32 or int64 [2] stateless seed.
        dtype: floating dtype of the result.
    """
    size = tf.reduce_prod(shape)
    halves = (size + 1) // 2
    bits = tf.random.stateless_uniform(
        tf.reshape(halves, [1]), seed=seed, dtype=tf.uint32, minval=None, maxval=None
    )
    bits16 = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:size]
    keep = bits16 >= tf.constant(dropout_threshold(rate), tf.uint16)
    return tf.reshape(tf.cast(keep, dtype) * tf.constant(keep_scale(rate), dtype), shape)


@keras.saving.register_keras_serializable(package="plm_tf")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` with 16-bit Philox masks (see the module docstring).

    Args: as `keras.layers.Dropout` (`rate`, `noise_shape`, `seed`). `get_config` is Keras's.

    Call: `inputs` float of any shape, `training` bool → same shape and dtype. With `noise_shape` the mask is
    drawn for that shape and broadcast, as in Keras.

    Example:
        >>> layer = Dropout(0.1, seed=1)
        >>> outputs = layer(tf.ones([4, 8]), training=True)   # ~10% zeros, survivors 1/(1 − 0.1000061)
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        inputs = tf.convert_to_tensor(inputs)
        seed = tf.cast(self.seed_generator.next(), tf.int32)
        shape = tf.shape(inputs)
        if self.noise_shape is not None:
            shape = tf.stack([shape[i] if size is None else size for i, size in enumerate(self.noise_shape)])
        return inputs * keep_mask(shape, self.rate, seed, inputs.dtype)
