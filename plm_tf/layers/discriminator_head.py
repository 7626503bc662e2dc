"""ELECTRA's replaced-token-detection head.

google-research/electra `run_pretraining.py` `_get_discriminator_output`: Dense(H, activation) on every
token's hidden state, then Dense(1), squeezed to one logit per token (positive = "replaced"). Initializers as
there: the hidden Dense uses `create_initializer` (truncated normal, `initializer_range`), the output Dense is
a bare `tf.layers.dense(hidden, units=1)`, i.e. Glorot uniform; biases zero.
"""
import keras
from keras import ops

from plm_tf.layers.activations import activation_name, get_activation
from plm_tf.layers.initializers import truncated_normal


@keras.saving.register_keras_serializable(package="plm_tf")
class ReplacedTokenHead(keras.layers.Layer):
    """Per-token binary classifier.

    Args:
        hidden_size: H, width of the hidden dense layer (the discriminator's hidden size).
        activation: the encoder's hidden activation (ELECTRA: exact GELU).
        initializer_range: stddev of the hidden layer's truncated-normal initializer.

    Call: `sequence_output` float [B, T, H] → float logits [B, T].
    """

    def __init__(self, hidden_size, activation="gelu_exact", initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.activation = activation_name(activation)
        self.initializer_range = initializer_range
        self.dense = keras.layers.Dense(
            hidden_size, activation=get_activation(activation), kernel_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy, name="dense",
        )
        self.prediction = keras.layers.Dense(
            1, kernel_initializer="glorot_uniform", dtype=self.dtype_policy, name="prediction"
        )

    def build(self, input_shape):
        self.dense.build((None, None, input_shape[-1]))
        self.prediction.build((None, None, self.hidden_size))
        self.built = True

    def call(self, sequence_output):
        return ops.squeeze(self.prediction(self.dense(sequence_output)), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size, activation=self.activation, initializer_range=self.initializer_range
        )
        return config
