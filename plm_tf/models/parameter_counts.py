"""Parameter counts per component, counting each shared variable once, for a built model or a gin file."""
from plm_tf.gin_config import ConfigError, parse_gin, query_or_none
from plm_tf.models.pretraining import ElectraPretrainer


def count_variables(layer, exclude=()):
    """Number of scalars in `layer`'s trainable variables, shared ones once, minus those also in `exclude`."""
    excluded = {id(v) for other in exclude for v in other.trainable_variables}
    seen = {}
    for variable in layer.trainable_variables:
        if id(variable) not in excluded:
            seen[id(variable)] = variable
    total = 0
    for variable in seen.values():
        size = 1
        for dim in variable.shape:
            size *= int(dim)
        total += size
    return total


def component_counts(model):
    """Ordered {component: count} for a built pretraining model (REFERENCE §1's breakdown).

    ELECTRA: `encoder` is the discriminator (the model that is kept); `generator` excludes the embeddings it
    shares with it; `pretraining_model` counts the shared embeddings once.
    """
    if isinstance(model, ElectraPretrainer):
        counts = {
            "encoder": count_variables(model.discriminator),
            "discriminator_head": count_variables(model.discriminator_head),
            "generator": count_variables(model.generator, exclude=[model.discriminator]),
            "generator_head": count_variables(model.generator_head),
        }
    else:
        counts = {
            "encoder": count_variables(model.encoder),
            "masked_lm_head": count_variables(model.masked_lm_head),
        }
        if model.sentence_head is not None:
            counts["sentence_head"] = count_variables(model.sentence_head)
    counts["pretraining_model"] = count_variables(model)
    return counts

_FRAGMENT_HINT = ("base/*.gin and testing/tiny_encoder.gin are fragments that the model files include; give a "
                  "model file such as electra_small.gin")


def bind_configured_vocab_size():
    """Resolves `encoder_config.vocab_size = None` ("taken from the vocabulary", e.g. gin/electra_demo.gin) the
    way `python -m plm_tf.train` does: from the tokenizer `pretrain.tokenizer_kind` / `pretrain.vocab_path`
    name, defaulting to the objective's embedded vocabulary. A bound size is left alone (the published sizes
    count their released vocabularies, which differ from the embedded ones)."""
    if query_or_none("encoder_config.vocab_size") is not None:
        return
    from plm_tf.data import pipelines
    from plm_tf.models.configs import bind_vocab_size

    objective = query_or_none("build_pretraining_model.objective")
    kind = query_or_none("pretrain.tokenizer_kind") or pipelines.DEFAULT_TOKENIZER.get(objective, "wordpiece")
    bind_vocab_size(pipelines.load_tokenizer(kind, query_or_none("pretrain.vocab_path")))


def configured_counts(gin_files, bindings=()):
    """`component_counts` of the pretraining model that `gin_files` + `bindings` describe.

    Raises:
        ConfigError: the files do not describe a model (an include-only `base/` fragment, a `finetune/`
            recipe) or do not parse; the message says which file to give instead.
    """
    from plm_tf.models.builders import build_pretraining_model

    try:
        parse_gin(gin_files, bindings)
    except ConfigError as error:
        message = str(error).split(" in config string:")[0]  # gin appends the whole parsed config
        if "No bindings specified for" in message or "No configurable matching" in message:
            message += f" ({_FRAGMENT_HINT})"
        raise ConfigError(message) from None
    if query_or_none("build_pretraining_model.objective") is None:
        raise ConfigError(
            f"{', '.join(gin_files)} configure(s) no pretraining model (no build_pretraining_model.objective): "
            "give a model gin file such as electra_small.gin (finetune/*.gin hold fine-tuning recipes only).")
    bind_configured_vocab_size()
    try:
        model = build_pretraining_model()
    except RuntimeError as error:  # gin: "Required bindings for `encoder_config` not provided ..."
        raise ConfigError(
            f"{', '.join(gin_files)} do(es) not describe a whole model: {str(error).splitlines()[0]} "
            f"({_FRAGMENT_HINT})") from None
    model.build()
    return component_counts(model)
