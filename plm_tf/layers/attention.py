"""Multi-head scaled dot-product self-attention with a padding mask.

Follows google-research/bert `modeling.py` `attention_layer`: separate query/key/value projections of width H,
scores scaled by 1/√(H/heads) (applied to the query, see `call`), padding keys masked with an additive −10000 before the softmax, dropout on the
attention probabilities. The output projection ("dense" in BERT's `attention/output`) is part of this layer.
The softmax is computed in float32 even under mixed precision.
"""
import keras
from keras import ops

from plm_tf.layers.dropout import Dropout
from plm_tf.layers.initializers import truncated_normal

# google-research/bert: `adder = (1.0 - mask) * -10000.0`.
MASK_ADDER = -10000.0


@keras.saving.register_keras_serializable(package="plm_tf")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Self-attention over a padded batch.

    Args:
        hidden_size: width H of the input, of q/k/v and of the output.
        num_heads: number of heads; H must be divisible by it.
        attention_dropout_rate: dropout on the attention probabilities.
        initializer_range: stddev of the truncated-normal kernel initializer.

    Call args:
        hidden_states: float [B, T, H].
        attention_mask: int or bool [B, T], 1 for real tokens, 0 for padding; None attends everywhere.
        training: bool.

    Returns:
        float [B, T, H] (after the output projection).
    """

    def __init__(self, hidden_size, num_heads, attention_dropout_rate=0.1, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}.")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.attention_dropout_rate = attention_dropout_rate
        self.initializer_range = initializer_range

        def dense(name):
            return keras.layers.Dense(
                hidden_size,
                kernel_initializer=truncated_normal(initializer_range),
                dtype=self.dtype_policy,
                name=name,
            )

        self.query = dense("query")
        self.key = dense("key")
        self.value = dense("value")
        self.output_dense = dense("output_dense")
        self.dropout = Dropout(attention_dropout_rate, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape):
        for layer in (self.query, self.key, self.value, self.output_dense):
            layer.build((None, None, self.hidden_size))
        self.built = True

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (batch, length, self.num_heads, self.head_size))

    def call(self, hidden_states, attention_mask=None, training=False):
        # BERT scales the scores by 1/√d; scaling the query instead is the same product on a tensor N·T/H times
        # smaller ([B, T, H] against [B, N, T, T]), and exact when d is a power of 4 (64 in every published size).
        query = self._split_heads(self.query(hidden_states) * ops.cast(self.head_size**-0.5, self.compute_dtype))
        key = self._split_heads(self.key(hidden_states))
        value = self._split_heads(self.value(hidden_states))
        # [B, N, Tq, Tk]
        scores = ops.cast(ops.einsum("bqnd,bknd->bnqk", query, key), "float32")
        if attention_mask is not None:
            keep = ops.cast(attention_mask, "float32")[:, None, None, :]
            scores = scores + (1.0 - keep) * MASK_ADDER
        probs = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        probs = self.dropout(probs, training=training)
        context = ops.einsum("bnqk,bknd->bqnd", probs, value)
        batch, length = ops.shape(context)[0], ops.shape(context)[1]
        context = ops.reshape(context, (batch, length, self.hidden_size))
        return self.output_dense(context)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            attention_dropout_rate=self.attention_dropout_rate,
            initializer_range=self.initializer_range,
        )
        return config
