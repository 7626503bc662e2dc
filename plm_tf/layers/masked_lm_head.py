"""Masked-LM output head tied to the input word table.

google-research/bert `run_pretraining.py` `get_masked_lm_output` (ALBERT and ELECTRA's generator reuse it):
gather the hidden states at the masked positions, Dense(E) → activation → LayerNorm, then multiply by the
word-embedding table transposed and add an output bias of size V. The dense maps H → E, so with factorized
embeddings (ALBERT, ELECTRA generators) it also projects back down to the table's width.
"""
import keras
from keras import ops

from plm_tf.layers.layer_norm import LayerNorm
from plm_tf.layers.activations import activation_name, get_activation
from plm_tf.layers.initializers import truncated_normal


def gather_positions(sequence, positions):
    """sequence float [B, T, H], positions int [B, P] → float [B, P, H]."""
    return ops.take_along_axis(sequence, ops.expand_dims(ops.cast(positions, "int32"), -1), axis=1)


@keras.saving.register_keras_serializable(package="plm_tf")
class MaskedLMHead(keras.layers.Layer):
    """Predicts the original token at masked positions.

    Args:
        vocab_size: V, the size of the output bias.
        embedding_size: E, the width of the tied word table (and of the dense output).
        activation: "gelu_exact" / "gelu_tanh" / Keras name; the encoder's hidden activation.
        layer_norm_epsilon: ε of the head's LayerNorm.
        initializer_range: stddev of the truncated-normal initializer.

    Call args:
        sequence_output: float [B, T, H].
        embedding_table: the word table variable [V, E] of the (shared) embeddings.
        masked_positions: int [B, P], or None for logits at every position.

    Returns:
        float logits [B, P, V] (or [B, T, V]).
    """

    def __init__(
        self, vocab_size, embedding_size, activation="gelu_exact", layer_norm_epsilon=1e-12,
        initializer_range=0.02, **kwargs
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.activation = activation_name(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.dense = keras.layers.Dense(
            embedding_size,
            activation=get_activation(activation),
            kernel_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy,
            name="dense",
        )
        self.layer_norm = LayerNorm(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )

    def build(self, sequence_shape, *args, **kwargs):
        self.dense.build((None, None, sequence_shape[-1]))
        self.layer_norm.build((None, None, self.embedding_size))
        self.output_bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="output_bias")
        self.built = True

    def call(self, sequence_output, embedding_table, masked_positions=None):
        hidden = sequence_output if masked_positions is None else gather_positions(sequence_output, masked_positions)
        hidden = self.layer_norm(self.dense(hidden))
        table = ops.cast(embedding_table, hidden.dtype)
        logits = ops.einsum("bpe,ve->bpv", hidden, table)
        return logits + ops.cast(self.output_bias, logits.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
        )
        return config
