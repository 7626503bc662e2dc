"""Word + position + segment embeddings, summed, then LayerNorm and dropout.

Follows google-research/bert `modeling.py` (`embedding_lookup` + `embedding_postprocessor`), which ALBERT and
ELECTRA reuse; fairseq RoBERTa differs only in its settings (a 514-row position table read from position
`offset` = padding id + 1 = 2 on, a single segment type, LayerNorm ε 1e-5).

The width is the *embedding* size E. ALBERT and ELECTRA-Small use E < H and project up afterwards; that
projection belongs to the encoder (each ELECTRA tower has its own, REFERENCE §3), not to this layer.
"""
import keras
from keras import ops

from plm_tf.layers.dropout import Dropout
from plm_tf.layers.layer_norm import LayerNorm
from plm_tf.layers.initializers import truncated_normal


@keras.saving.register_keras_serializable(package="plm_tf")
class TransformerEmbeddings(keras.layers.Layer):
    """Token, position and segment ("token type") embeddings.

    Args:
        vocab_size: rows of the word table V.
        embedding_size: width E of all three tables.
        max_position_embeddings: rows of the position table P (512; RoBERTa 514).
        type_vocab_size: rows of the segment table T (2; RoBERTa 1).
        position_offset: index of the first position's row (0; RoBERTa 2, fairseq's padding id + 1).
        layer_norm_epsilon: ε of the LayerNorm (1e-12 Google codebases, 1e-5 fairseq).
        dropout_rate: dropout after the LayerNorm.
        initializer_range: stddev of the truncated-normal initializer.

    Call args:
        input_ids: int [B, T].
        segment_ids: int [B, T] or None (all zeros).
        training: bool, enables dropout.

    Returns:
        float [B, T, E].

    Example:
        >>> emb = TransformerEmbeddings(vocab_size=100, embedding_size=16, max_position_embeddings=32)
        >>> emb(ops.ones((2, 8), "int32")).shape
        (2, 8, 16)
    """

    def __init__(
        self,
        vocab_size,
        embedding_size,
        max_position_embeddings=512,
        type_vocab_size=2,
        position_offset=0,
        layer_norm_epsilon=1e-12,
        dropout_rate=0.1,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.position_offset = position_offset
        self.layer_norm_epsilon = layer_norm_epsilon
        self.dropout_rate = dropout_rate
        self.initializer_range = initializer_range
        self.layer_norm = LayerNorm(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.dropout = Dropout(dropout_rate, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape=None):
        init = truncated_normal(self.initializer_range)
        self.word_embeddings = self.add_weight(
            shape=(self.vocab_size, self.embedding_size), initializer=init, name="word_embeddings"
        )
        self.position_embeddings = self.add_weight(
            shape=(self.max_position_embeddings, self.embedding_size), initializer=init, name="position_embeddings"
        )
        self.token_type_embeddings = self.add_weight(
            shape=(self.type_vocab_size, self.embedding_size), initializer=init, name="token_type_embeddings"
        )
        self.layer_norm.build((None, None, self.embedding_size))
        self.built = True

    @property
    def embedding_table(self):
        """The word table [V, E], tied to the masked-LM output layer."""
        return self.word_embeddings

    def call(self, input_ids, segment_ids=None, training=False):
        seq_len = input_ids.shape[1]
        if seq_len is not None and seq_len + self.position_offset > self.max_position_embeddings:
            raise ValueError(
                f"Sequence length {seq_len} (+ position offset {self.position_offset}) exceeds the "
                f"{self.max_position_embeddings}-row position table."
            )
        words = ops.take(self.word_embeddings, input_ids, axis=0)
        positions = ops.arange(ops.shape(input_ids)[1]) + self.position_offset
        position_rows = ops.take(self.position_embeddings, positions, axis=0)
        if segment_ids is None:
            segment_ids = ops.zeros_like(input_ids)
        segments = ops.take(self.token_type_embeddings, segment_ids, axis=0)
        summed = words + ops.expand_dims(position_rows, 0) + segments
        return self.dropout(self.layer_norm(summed), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.embedding_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            position_offset=self.position_offset,
            layer_norm_epsilon=self.layer_norm_epsilon,
            dropout_rate=self.dropout_rate,
            initializer_range=self.initializer_range,
        )
        return config
