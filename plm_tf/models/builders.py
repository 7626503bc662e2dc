"""Gin-configurable builders: the one place gin bindings turn into pretraining models.

The objective is usually bound once as a macro and shared with the data pipeline:

    OBJECTIVE = 'electra'
    build_pretraining_model.objective = %OBJECTIVE
"""
import gin

from plm_tf.models.configs import encoder_config
from plm_tf.models.pretraining import OBJECTIVES, ElectraPretrainer, MaskedLMPretrainer


@gin.configurable
def build_pretraining_model(objective=gin.REQUIRED):
    """Builds the pretraining model for `objective` ∈ OBJECTIVES from the bound `encoder_config`."""
    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown pretraining objective {objective!r}; choose one of {OBJECTIVES}.")
    if objective == "electra":
        return build_electra()
    return MaskedLMPretrainer(encoder_config(), objective=objective, name="pretraining_model")


@gin.configurable("electra")
def build_electra(generator_hidden_fraction=0.25, tie_embeddings=True, temperature=1.0):
    """ELECTRA's generator/discriminator pair (see ElectraPretrainer); bound as `electra.*` in gin."""
    return ElectraPretrainer(
        encoder_config(),
        generator_hidden_fraction=generator_hidden_fraction,
        tie_embeddings=tie_embeddings,
        temperature=temperature,
        name="pretraining_model",
    )
