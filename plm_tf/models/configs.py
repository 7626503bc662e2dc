"""Gin-configurable encoder configuration shared by every model builder.

A published size is a set of `encoder_config.*` bindings (gin/<family>_base.gin + gin/<size>.gin); the
pretraining and fine-tuning builders call `encoder_config()` to get the keyword arguments of
`TransformerEncoder`.
"""
import gin

from plm_tf.gin_config import query_or_none


@gin.configurable
def encoder_config(
    vocab_size=gin.REQUIRED,
    hidden_size=gin.REQUIRED,
    num_layers=gin.REQUIRED,
    num_heads=gin.REQUIRED,
    intermediate_size=gin.REQUIRED,
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
):
    """Returns the `TransformerEncoder` keyword arguments bound in gin (see TransformerEncoder for each)."""
    return dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        intermediate_size=intermediate_size,
        embedding_size=embedding_size or hidden_size,
        max_position_embeddings=max_position_embeddings,
        type_vocab_size=type_vocab_size,
        position_offset=position_offset,
        activation=activation,
        layer_norm_epsilon=layer_norm_epsilon,
        dropout_rate=dropout_rate,
        attention_dropout_rate=attention_dropout_rate,
        initializer_range=initializer_range,
        share=share,
        num_hidden_groups=num_hidden_groups,
        inner_group_num=inner_group_num,
        use_pooler=use_pooler,
        embedding_projection_initializer=embedding_projection_initializer,
    )


def generator_config(discriminator_config, hidden_fraction):
    """ELECTRA's generator: the discriminator's config at `hidden_fraction` of its width.

    google-research/electra `run_pretraining.py` `get_generator_config`: hidden = H·fraction,
    intermediate = 4·hidden, heads = max(1, hidden // 64), same depth and embedding size E (the embeddings are
    shared, so the generator projects E → hidden when they differ). No pooler.
    """
    hidden = int(round(discriminator_config["hidden_size"] * hidden_fraction))
    config = dict(discriminator_config)
    config.update(
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_heads=max(1, hidden // 64),
        use_pooler=False,
    )
    return config


class VocabSizeError(ValueError):
    """The model's vocab_size and the tokenizer's vocabulary disagree."""


def resolve_vocab_size(configured, tokenizer):
    """`encoder_config.vocab_size`: None means the tokenizer's size; any other value must equal it."""
    if configured is None:
        return tokenizer.vocab_size
    if configured != tokenizer.vocab_size:
        raise VocabSizeError(
            f"The vocabulary has {tokenizer.vocab_size} tokens but encoder_config.vocab_size = {configured}. "
            "Use the matching vocab, or bind encoder_config.vocab_size = None to size the model from the vocab."
        )
    return configured


def bind_vocab_size(tokenizer):
    """Binds `encoder_config.vocab_size` to `resolve_vocab_size` of its current binding and `tokenizer`."""
    size = resolve_vocab_size(query_or_none("encoder_config.vocab_size"), tokenizer)
    with gin.unlock_config():
        gin.bind_parameter("encoder_config.vocab_size", size)
