"""Fine-tuning optimizers: the pretraining update rules plus per-variable learning-rate multipliers.

ELECTRA's layer-wise learning-rate decay (google-research/electra `model/optimization.py`, `_get_layer_lrs`;
REFERENCE §3): a variable at depth d gets `learning_rate * decay ** (L + 2 - d)`, with

    depth 0        the embeddings (word / position / type tables and their LayerNorm) and the E→H projection
    depth i + 1    transformer layer i
    depth L + 1    the pooler, when the encoder has one (ELECTRA has none, so the original never uses it)
    depth L + 2    the task head (multiplier 1)

The multiplier scales the whole step `lr * (m / (sqrt(v) + eps) + wd * w)`, weight-decay term included,
exactly as the original applies its per-variable learning rate. Layer-wise decay needs distinct layers: an
ALBERT encoder that shares a block across depths has no single depth per variable, so it is rejected unless
decay is 1.

The optimizer classes here subclass those of `plm_tf.training.optimizers` (same moments, weight-decay
exclusions, global-norm clipping, accumulation) and only scale the learning rate handed to `update_step`.
"""
import gin

from plm_tf.training import optimizers as base


def layer_depths(encoder, head_layers):
    """{variable path: depth} for an encoder and the task-head layers on top of it (see module docstring).

    Args:
        encoder: a `TransformerEncoder` (built).
        head_layers: layers of the task head (built), all at depth L + 2.

    Raises:
        ValueError: a block is shared across depths (ALBERT), or a trainable variable has no depth.
    """
    num_layers = encoder.num_layers
    depths = {}

    def assign(layer, depth):
        for variable in layer.trainable_variables:
            path = variable.path
            if path in depths and depths[path] != depth:
                raise ValueError(
                    f"{path} is used at depths {depths[path]} and {depth} (shared across layers, "
                    f"share={encoder.share!r}); layer-wise LR decay needs unshared layers (use layer_decay=1).")
            depths[path] = depth

    assign(encoder.embeddings, 0)
    if encoder.embedding_projection is not None:
        assign(encoder.embedding_projection, 0)
    for application, block_index in enumerate(encoder.block_schedule):
        assign(encoder.blocks[block_index], application + 1)
    if encoder.pooler is not None:
        assign(encoder.pooler, num_layers + 1)
    for layer in head_layers:
        assign(layer, num_layers + 2)
    missing = [v.path for v in encoder.trainable_variables if v.path not in depths]
    if missing:
        raise ValueError(f"No layer-wise depth for encoder variables {missing}.")
    return depths


def layerwise_lr_multipliers(encoder, head_layers, layer_decay):
    """{variable path: layer_decay ** (L + 2 - depth)}; ELECTRA uses 0.8 (Small, Base) and 0.9 (Large)."""
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}.")
    top = encoder.num_layers + 2
    if layer_decay == 1.0:
        return {path: 1.0 for path in _all_paths(encoder, head_layers)}
    return {path: layer_decay ** (top - depth) for path, depth in layer_depths(encoder, head_layers).items()}


def _all_paths(encoder, head_layers):
    paths = [v.path for v in encoder.trainable_variables]
    for layer in head_layers:
        paths.extend(v.path for v in layer.trainable_variables)
    return paths


class _LearningRateMultipliers:
    """Mixin: `update_step` gets `learning_rate * multiplier(variable)`.

    Args:
        learning_rate_multipliers: {variable path: float}; None means 1 for every variable. When given,
            every variable the optimizer is built for must have an entry (a silent 1 would hide a typo).
    """

    def __init__(self, *args, learning_rate_multipliers=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.learning_rate_multipliers = None
        if learning_rate_multipliers is not None:
            self.learning_rate_multipliers = {str(k): float(v) for k, v in learning_rate_multipliers.items()}

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        if self.learning_rate_multipliers is None:
            self._multiplier_by_index = [1.0] * len(var_list)
            return
        missing = [base._variable_path(v) for v in var_list
                   if base._variable_path(v) not in self.learning_rate_multipliers]
        if missing:
            raise ValueError(f"No learning-rate multiplier for variables {missing}.")
        self._multiplier_by_index = [self.learning_rate_multipliers[base._variable_path(v)] for v in var_list]

    def learning_rate_multiplier(self, variable):
        """The multiplier applied to `variable` (after `build`)."""
        return self._multiplier_by_index[self._get_variable_index(variable)]

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self._multiplier_by_index[self._get_variable_index(variable)]
        if multiplier != 1.0:
            learning_rate = learning_rate * multiplier
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["learning_rate_multipliers"] = self.learning_rate_multipliers
        return config


class LayerwiseAdamWeightDecay(_LearningRateMultipliers, base.AdamWeightDecay):
    """Google AdamW (BERT/ELECTRA) with per-variable learning-rate multipliers."""


class LayerwiseLamb(_LearningRateMultipliers, base.Lamb):
    """ALBERT's LAMB with per-variable learning-rate multipliers."""


class LayerwiseFairseqAdam(_LearningRateMultipliers, base.FairseqAdam):
    """fairseq Adam (RoBERTa) with per-variable learning-rate multipliers."""


_OPTIMIZERS = {"adamw": LayerwiseAdamWeightDecay, "lamb": LayerwiseLamb, "adam_fairseq": LayerwiseFairseqAdam}


@gin.configurable
def finetuning_optimizer(
    learning_rate,
    learning_rate_multipliers=None,
    name="adamw",
    weight_decay=None,
    beta_1=None,
    beta_2=None,
    epsilon=None,
    clip_norm=None,
    exclude_from_weight_decay=None,
):
    """Like `plm_tf.training.optimizers.create_optimizer`, with per-variable multipliers.

    Args:
        learning_rate: float or schedule (the fine-tuning loop passes the recipe's schedule).
        learning_rate_multipliers: {variable path: float} (see `layerwise_lr_multipliers`) or None.
        name: "adamw" (BERT/ELECTRA/ALBERT fine-tuning), "lamb" or "adam_fairseq" (RoBERTa).
        weight_decay, beta_1, beta_2, epsilon, clip_norm, exclude_from_weight_decay: None keeps the update
            rule's default (see `plm_tf.training.optimizers`); clip_norm 0 disables clipping.
    """
    if name not in _OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {sorted(_OPTIMIZERS)}.")
    kwargs = {"weight_decay": weight_decay, "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon,
              "global_clipnorm": clip_norm, "exclude_from_weight_decay": exclude_from_weight_decay}
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    return _OPTIMIZERS[name](learning_rate=learning_rate, learning_rate_multipliers=learning_rate_multipliers,
                             **kwargs)
