"""One transformer encoder network configurable as BERT, RoBERTa, ALBERT or an ELECTRA tower.

Data flow (google-research/bert `BertModel`, google-research/albert `AlbertModel`,
google-research/electra `BertModel`):

    TransformerEmbeddings (width E) → [Dense E→H "embedding_projection" if E ≠ H]
        → L post-LN TransformerBlocks → sequence output [B, T, H]
        → [pooler: Dense(H, tanh) on the first token] → pooled output [B, H]

Parameter sharing (`share`):
- "none": every layer has its own weights (BERT, RoBERTa, ELECTRA).
- "all": ALBERT's cross-layer sharing. `num_hidden_groups` groups of `inner_group_num` blocks each; layer i
  runs every block of group int(i / L · G) (google-research/albert `transformer_model`). Released ALBERT
  models use one group of one block.
- "attention" / "ffn": the ALBERT paper's ablations (Table 4): only the attention half, or only the FFN half,
  is shared by all layers.
"""
import keras
from keras import ops

from plm_tf.layers.activations import activation_name
from plm_tf.layers.embeddings import TransformerEmbeddings
from plm_tf.layers.initializers import truncated_normal
from plm_tf.layers.transformer_block import TransformerBlock

SHARING_MODES = ("none", "all", "attention", "ffn")
# Kernel initializer of the E→H projection: ALBERT's `embedding_hidden_mapping_in` uses `create_initializer`
# (truncated normal, google-research/albert modeling.py `transformer_model`); ELECTRA's `embeddings_project`
# is a bare `tf.layers.dense`, i.e. Glorot uniform (google-research/electra model/modeling.py `BertModel`).
PROJECTION_INITIALIZERS = ("truncated_normal", "glorot_uniform")


@keras.saving.register_keras_serializable(package="plm_tf")
class TransformerEncoder(keras.Model):
    """Embeddings, optional E→H projection, L transformer layers, optional pooler.

    Args:
        vocab_size: V.
        hidden_size: H.
        num_layers: L, the number of layer applications (depth).
        num_heads: attention heads.
        intermediate_size: FFN width I.
        embedding_size: E; None means E = H (no projection).
        max_position_embeddings: rows of the position table (512; RoBERTa 514).
        type_vocab_size: segment types (2; RoBERTa 1).
        position_offset: first position row (0; RoBERTa 2).
        activation: "gelu_exact" (RoBERTa, ELECTRA) or "gelu_tanh" (BERT, ALBERT).
        layer_norm_epsilon: 1e-12 (Google codebases) or 1e-5 (fairseq).
        dropout_rate: hidden dropout (0.1; ALBERT v2 0).
        attention_dropout_rate: attention-probability dropout (0.1; ALBERT v2 0).
        initializer_range: truncated-normal stddev (0.02).
        share: one of SHARING_MODES.
        num_hidden_groups: ALBERT groups G (share="all" only).
        inner_group_num: blocks per ALBERT group (share="all" only).
        use_pooler: add BERT's tanh pooler on the first token (not in ELECTRA).
        embedding_projection_initializer: kernel initializer of the E→H projection, one of
            PROJECTION_INITIALIZERS: "truncated_normal" (ALBERT, `initializer_range`) or "glorot_uniform"
            (ELECTRA, bound in gin/base/electra.gin). Biases start at zero either way.
        embeddings: an existing TransformerEmbeddings to use instead of creating one (ELECTRA's generator and
            discriminator share one). Not part of `get_config`: the model that shares it rebuilds the sharing.

    Call args:
        inputs: dict with "input_ids" int [B, T], optional "input_mask" int [B, T] (1 = real token; default all
            ones) and optional "segment_ids" int [B, T] (default zeros).
        training: bool, enables dropout.

    Returns:
        dict with "sequence_output" float [B, T, H], "encoder_outputs" (list of float [B, T, H], one per block
        application, last equals sequence_output), "embedding_output" float [B, T, H] (after the projection),
        and "pooled_output" float [B, H] when `use_pooler`.
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        num_layers,
        num_heads,
        intermediate_size,
        embedding_size=None,
        max_position_embeddings=512,
        type_vocab_size=2,
        position_offset=0,
        activation="gelu_exact",
        layer_norm_epsilon=1e-12,
        dropout_rate=0.1,
        attention_dropout_rate=0.1,
        initializer_range=0.02,
        share="none",
        num_hidden_groups=1,
        inner_group_num=1,
        use_pooler=True,
        embedding_projection_initializer="truncated_normal",
        embeddings=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if share not in SHARING_MODES:
            raise ValueError(f"share={share!r} is not one of {SHARING_MODES}.")
        if share != "all" and (num_hidden_groups != 1 or inner_group_num != 1):
            raise ValueError("num_hidden_groups / inner_group_num only apply with share='all' (ALBERT).")
        if share == "all" and not 1 <= num_hidden_groups <= num_layers:
            raise ValueError(f"num_hidden_groups={num_hidden_groups} must be between 1 and num_layers={num_layers}.")
        if embedding_projection_initializer not in PROJECTION_INITIALIZERS:
            raise ValueError(f"embedding_projection_initializer={embedding_projection_initializer!r} is not one of "
                             f"{PROJECTION_INITIALIZERS}.")
        embedding_size = embedding_size or hidden_size
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.embedding_size = embedding_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.position_offset = position_offset
        self.activation = activation_name(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.initializer_range = initializer_range
        self.share = share
        self.num_hidden_groups = num_hidden_groups
        self.inner_group_num = inner_group_num
        self.use_pooler = use_pooler
        self.embedding_projection_initializer = embedding_projection_initializer

        if embeddings is None:
            embeddings = TransformerEmbeddings(
                vocab_size,
                embedding_size,
                max_position_embeddings=max_position_embeddings,
                type_vocab_size=type_vocab_size,
                position_offset=position_offset,
                layer_norm_epsilon=layer_norm_epsilon,
                dropout_rate=dropout_rate,
                initializer_range=initializer_range,
                dtype=self.dtype_policy,
                name="embeddings",
            )
        elif (embeddings.vocab_size, embeddings.embedding_size) != (vocab_size, embedding_size):
            raise ValueError(
                f"Shared embeddings are {embeddings.vocab_size}×{embeddings.embedding_size}, but this encoder "
                f"expects vocab_size={vocab_size}, embedding_size={embedding_size}."
            )
        self.embeddings = embeddings
        self.embedding_projection = None
        if embedding_size != hidden_size:
            projection_init = (truncated_normal(initializer_range)
                               if embedding_projection_initializer == "truncated_normal" else "glorot_uniform")
            self.embedding_projection = keras.layers.Dense(
                hidden_size, kernel_initializer=projection_init,
                dtype=self.dtype_policy, name="embedding_projection",
            )
        self.blocks, self.block_schedule = self._make_blocks()
        # tf.train.Checkpoint does not follow Keras' tracked lists, so a block reachable only through
        # `self.blocks` would be missing from every checkpoint. One attribute per block (named like the
        # block: layer_3, group_0_inner_1) makes each a direct dependency; Keras still counts each once.
        for block in self.blocks:
            setattr(self, block.name, block)
        self.pooler = None
        if use_pooler:
            self.pooler = keras.layers.Dense(
                hidden_size, activation="tanh", kernel_initializer=truncated_normal(initializer_range),
                dtype=self.dtype_policy, name="pooler",
            )

    def _block_kwargs(self):
        return dict(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            activation=self.activation,
            dropout_rate=self.dropout_rate,
            attention_dropout_rate=self.attention_dropout_rate,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
            dtype=self.dtype_policy,
        )

    def _make_blocks(self):
        """Returns (distinct blocks, the index into them of each block application in order)."""
        kwargs = self._block_kwargs()
        if self.share == "all":
            blocks = [
                TransformerBlock(**kwargs, name=f"group_{g}_inner_{k}")
                for g in range(self.num_hidden_groups)
                for k in range(self.inner_group_num)
            ]
            schedule = []
            for i in range(self.num_layers):
                group = int(i / self.num_layers * self.num_hidden_groups)  # google-research/albert
                schedule.extend(group * self.inner_group_num + k for k in range(self.inner_group_num))
            return blocks, schedule
        # The ablations share one half of layer 0 with every later layer (ALBERT paper, Table 4).
        first = TransformerBlock(**kwargs, name="layer_0")
        shared = {
            "none": {},
            "attention": {"attention_sublayer": first.attention_sublayer},
            "ffn": {"feed_forward_sublayer": first.feed_forward_sublayer},
        }[self.share]
        blocks = [first] + [
            TransformerBlock(**kwargs, **shared, name=f"layer_{i}") for i in range(1, self.num_layers)
        ]
        return blocks, list(range(self.num_layers))

    def build(self, input_shape=None):
        if not self.embeddings.built:  # a shared embedding block may already be built by the other tower
            self.embeddings.build()
        if self.embedding_projection is not None:
            self.embedding_projection.build((None, None, self.embedding_size))
        for block in self.blocks:
            block.build((None, None, self.hidden_size))
        if self.pooler is not None:
            self.pooler.build((None, self.hidden_size))
        self.built = True

    @property
    def embedding_table(self):
        """The word table [V, E] (tied to masked-LM heads)."""
        return self.embeddings.embedding_table

    def call(self, inputs, training=False):
        input_ids = inputs["input_ids"]
        input_mask = inputs.get("input_mask")
        if input_mask is None:
            input_mask = ops.ones_like(input_ids)
        hidden = self.embeddings(input_ids, inputs.get("segment_ids"), training=training)
        if self.embedding_projection is not None:
            hidden = self.embedding_projection(hidden)
        outputs = {"embedding_output": hidden}
        encoder_outputs = []
        for index in self.block_schedule:
            hidden = self.blocks[index](hidden, input_mask, training=training)
            encoder_outputs.append(hidden)
        outputs["sequence_output"] = hidden
        outputs["encoder_outputs"] = encoder_outputs
        if self.pooler is not None:
            outputs["pooled_output"] = self.pooler(hidden[:, 0, :])
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            embedding_size=self.embedding_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            position_offset=self.position_offset,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            dropout_rate=self.dropout_rate,
            attention_dropout_rate=self.attention_dropout_rate,
            initializer_range=self.initializer_range,
            share=self.share,
            num_hidden_groups=self.num_hidden_groups,
            inner_group_num=self.inner_group_num,
            use_pooler=self.use_pooler,
            embedding_projection_initializer=self.embedding_projection_initializer,
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
