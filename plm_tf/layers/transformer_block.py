"""The post-LayerNorm transformer block of BERT, RoBERTa, ALBERT and ELECTRA.

google-research/bert `modeling.py` `transformer_model`:

    h = LayerNorm(x + Dropout(SelfAttention(x)))          # AttentionSublayer
    y = LayerNorm(h + Dropout(W2 · act(W1 · h + b1) + b2)) # FeedForwardSublayer

The two halves are separate layers so that an encoder can share one of them across depth: ALBERT shares
whole blocks, and the ALBERT paper's ablations (Table 4) share only the attention half or only the FFN half.
Each half owns its LayerNorm, which is how those ablation parameter counts come out (REFERENCE §1).
"""
import keras

from plm_tf.layers.dropout import Dropout
from plm_tf.layers.layer_norm import LayerNorm
from plm_tf.layers.activations import activation_name, get_activation
from plm_tf.layers.attention import MultiHeadSelfAttention
from plm_tf.layers.initializers import truncated_normal


@keras.saving.register_keras_serializable(package="plm_tf")
class AttentionSublayer(keras.layers.Layer):
    """LayerNorm(x + Dropout(MultiHeadSelfAttention(x))).

    Args:
        hidden_size, num_heads: attention shape.
        dropout_rate: dropout on the attention output before the residual.
        attention_dropout_rate: dropout on the attention probabilities.
        layer_norm_epsilon: ε of the LayerNorm.
        initializer_range: stddev of the truncated-normal initializer.

    Call: `hidden_states` float [B, T, H], `attention_mask` [B, T] (1 = real) → float [B, T, H].
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        dropout_rate=0.1,
        attention_dropout_rate=0.1,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.attention = MultiHeadSelfAttention(
            hidden_size,
            num_heads,
            attention_dropout_rate=attention_dropout_rate,
            initializer_range=initializer_range,
            dtype=self.dtype_policy,
            name="self_attention",
        )
        self.dropout = Dropout(dropout_rate, dtype=self.dtype_policy, name="dropout")
        self.layer_norm = LayerNorm(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )

    def build(self, input_shape):
        self.attention.build((None, None, self.hidden_size))
        self.layer_norm.build((None, None, self.hidden_size))
        self.built = True

    def call(self, hidden_states, attention_mask=None, training=False):
        attended = self.attention(hidden_states, attention_mask, training=training)
        return self.layer_norm(hidden_states + self.dropout(attended, training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            dropout_rate=self.dropout_rate,
            attention_dropout_rate=self.attention_dropout_rate,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
        )
        return config


@keras.saving.register_keras_serializable(package="plm_tf")
class FeedForwardSublayer(keras.layers.Layer):
    """LayerNorm(h + Dropout(Dense_H(act(Dense_I(h))))).

    Args:
        hidden_size: H.
        intermediate_size: I (4H in every published size).
        activation: "gelu_exact", "gelu_tanh" or any Keras activation.
        dropout_rate: dropout before the residual.
        layer_norm_epsilon, initializer_range: as in AttentionSublayer.

    Call: float [B, T, H] → float [B, T, H].
    """

    def __init__(
        self,
        hidden_size,
        intermediate_size,
        activation="gelu_exact",
        dropout_rate=0.1,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.activation = activation_name(activation)
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        init = truncated_normal(initializer_range)
        self.intermediate = keras.layers.Dense(
            intermediate_size,
            activation=get_activation(activation),
            kernel_initializer=init,
            dtype=self.dtype_policy,
            name="intermediate",
        )
        self.output_dense = keras.layers.Dense(
            hidden_size, kernel_initializer=init, dtype=self.dtype_policy, name="output_dense"
        )
        self.dropout = Dropout(dropout_rate, dtype=self.dtype_policy, name="dropout")
        self.layer_norm = LayerNorm(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )

    def build(self, input_shape):
        self.intermediate.build((None, None, self.hidden_size))
        self.output_dense.build((None, None, self.intermediate_size))
        self.layer_norm.build((None, None, self.hidden_size))
        self.built = True

    def call(self, hidden_states, training=False):
        transformed = self.output_dense(self.intermediate(hidden_states))
        return self.layer_norm(hidden_states + self.dropout(transformed, training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            activation=self.activation,
            dropout_rate=self.dropout_rate,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
        )
        return config


@keras.saving.register_keras_serializable(package="plm_tf")
class TransformerBlock(keras.layers.Layer):
    """One post-LN transformer layer: AttentionSublayer then FeedForwardSublayer.

    Args:
        hidden_size, num_heads, intermediate_size, activation, dropout_rate, attention_dropout_rate,
        layer_norm_epsilon, initializer_range: see the sublayers.
        attention_sublayer: an existing AttentionSublayer to use (shared) instead of creating one.
        feed_forward_sublayer: an existing FeedForwardSublayer to use (shared) instead of creating one.
            Sharing is a relation between layers, so it is not part of `get_config`: `from_config`
            gives a block of the same shape with its own sublayers; encoders rebuild sharing from
            their own configuration.

    Call: `hidden_states` float [B, T, H], `attention_mask` [B, T] → float [B, T, H].
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        intermediate_size,
        activation="gelu_exact",
        dropout_rate=0.1,
        attention_dropout_rate=0.1,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        attention_sublayer=None,
        feed_forward_sublayer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.activation = activation_name(activation)
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.attention_sublayer = attention_sublayer or AttentionSublayer(
            hidden_size,
            num_heads,
            dropout_rate=dropout_rate,
            attention_dropout_rate=attention_dropout_rate,
            layer_norm_epsilon=layer_norm_epsilon,
            initializer_range=initializer_range,
            dtype=self.dtype_policy,
            name="attention",
        )
        self.feed_forward_sublayer = feed_forward_sublayer or FeedForwardSublayer(
            hidden_size,
            intermediate_size,
            activation=activation,
            dropout_rate=dropout_rate,
            layer_norm_epsilon=layer_norm_epsilon,
            initializer_range=initializer_range,
            dtype=self.dtype_policy,
            name="feed_forward",
        )

    def build(self, input_shape):
        for sublayer in (self.attention_sublayer, self.feed_forward_sublayer):
            if not sublayer.built:
                sublayer.build((None, None, self.hidden_size))
        self.built = True

    def call(self, hidden_states, attention_mask=None, training=False):
        hidden_states = self.attention_sublayer(hidden_states, attention_mask, training=training)
        return self.feed_forward_sublayer(hidden_states, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            activation=self.activation,
            dropout_rate=self.dropout_rate,
            attention_dropout_rate=self.attention_dropout_rate,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
        )
        return config
