"""Parameter counts per component, counting each shared variable once."""
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
