"""Pretraining optimizers: Google's AdamW, ALBERT's LAMB and fairseq's Adam, as Keras 3 optimizers.

Three update rules, each matching the codebase whose recipe plm_tf reproduces:

* `AdamWeightDecay` -- google-research/bert and google-research/electra `optimization.py`
  (`AdamWeightDecayOptimizer`): Adam moments *without* bias correction,
  `update = m / (sqrt(v) + eps) + wd * w`, `w -= lr * update`; LayerNorm and bias variables get no decay.
* `Lamb` -- google-research/albert `lamb_optimizer.py` (`LAMBOptimizer`): the same `update`, multiplied by
  the trust ratio `||w|| / ||update||` (1 when either norm is 0); variables excluded from weight decay are
  also excluded from the trust ratio. `keras.optimizers.Lamb` is a different rule (bias correction,
  decoupled decay, no exclusions).
* `FairseqAdam` -- facebookresearch/fairseq `fairseq/optim/adam.py` (RoBERTa): bias-corrected Adam with
  AdamW-style decay on every variable, `w -= wd * lr * w`, then
  `w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`.

All three share the same gradient pipeline (`_PretrainingOptimizer`), implemented here rather than with the
Keras base class's `global_clipnorm` / `gradient_accumulation_steps` because the Keras 3 versions do not
combine correctly with distributed custom loops: Keras clips each replica's *local* gradient before the
all-reduce, evaluates learning-rate schedules at micro-steps instead of updates, and calls `merge_call`
inside `ops.cond`, which MirroredStrategy rejects inside `tf.function`. Here, on every `apply`:

1. gradients are summed across replicas (the train loop scales losses by the global batch);
2. with `gradient_accumulation_steps = k > 1`, they are added to per-variable accumulators and every k-th
   call the *mean* of the k micro-batch gradients is applied (mean-loss semantics: k micro-batches of B/k
   examples give the same update as one batch of B), after which the accumulators are zeroed;
3. the applied gradient is clipped by its global norm (`global_clipnorm`, google-research/bert's
   `tf.clip_by_global_norm(grads, 1.0)`), computed on the all-reduced, accumulated gradient;
4. the learning rate (or schedule) is evaluated at `optimizer.iterations`, the number of updates already
   applied, so a schedule written in update steps stays correct under accumulation.

Weight-decay exclusions are regular expressions searched in each variable's Keras `path`
(e.g. `encoder/layer_0/attention/layer_norm/gamma`, `mlm_head/output_bias`), like google-research/bert's
`_do_use_weight_decay` searches `["LayerNorm", "layer_norm", "bias"]` in the TF1 variable name.

Use `create_optimizer` (gin-configurable) to build one with its recipe's defaults.
"""

import re

import gin
import keras
import tensorflow as tf
from keras import ops

# google-research/bert, albert and electra pass exactly this list (matched with re.search).
GOOGLE_EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")


def _variable_path(variable):
    """Keras 3 variables have `path`; plain `tf.Variable`s only a `name` (with a `:0` suffix)."""
    path = getattr(variable, "path", None)
    if path is None:
        path = re.sub(r":\d+$", "", variable.name)
    return path


def _matches_any(patterns, path):
    return any(re.search(pattern, path) is not None for pattern in patterns)


class _PretrainingOptimizer(keras.optimizers.Optimizer):
    """Shared pipeline: all-reduce, accumulate, clip by global norm, then the subclass's `update_step`.

    Subclasses create their slots in `build` and implement `update_step(gradient, variable, learning_rate)`.

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`, evaluated at
            `iterations` (updates applied so far).
        weight_decay: decay rate; 0 or None disables it.
        beta_1, beta_2, epsilon: Adam moment decay rates and the term added to `sqrt(v)`.
        exclude_from_weight_decay: regular expressions; a variable whose path matches any of them gets no
            weight decay.
        global_clipnorm: clip the applied gradient to this global norm; None or 0 disables clipping.
        gradient_accumulation_steps: apply the mean gradient of this many `apply` calls; None or 1 applies
            every call.
        name: optimizer name (prefix of its variables).
        **kwargs: other `keras.optimizers.Optimizer` arguments (`clipnorm`, `clipvalue`,
            `loss_scale_factor`); `use_ema=True` is rejected because this pipeline does not implement it.
    """

    def __init__(
        self,
        learning_rate,
        weight_decay,
        beta_1,
        beta_2,
        epsilon,
        exclude_from_weight_decay,
        global_clipnorm=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        if kwargs.get("use_ema"):
            raise ValueError(f"{type(self).__name__} does not support use_ema=True.")
        if gradient_accumulation_steps is not None and gradient_accumulation_steps < 1:
            raise ValueError(
                f"gradient_accumulation_steps must be >= 1, got {gradient_accumulation_steps}."
            )
        if gradient_accumulation_steps == 1:
            gradient_accumulation_steps = None  # Keras' convention for "no accumulation".
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            global_clipnorm=global_clipnorm or None,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude_from_weight_decay_patterns = tuple(exclude_from_weight_decay or ())

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["m", "v"])
        self._decay_mask = [self.uses_weight_decay(v) for v in var_list]

    def uses_weight_decay(self, variable):
        """Whether `variable` (a model variable) is decayed: google-research/bert `_do_use_weight_decay`
        on the variable's Keras path."""
        if not self.weight_decay:
            return False
        return not _matches_any(self.exclude_from_weight_decay_patterns, _variable_path(variable))

    def _get_current_learning_rate(self):
        # Keras evaluates schedules at micro-steps (`_iterations`) under accumulation; use updates.
        if isinstance(self._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            return self._learning_rate(self.iterations)
        return super()._get_current_learning_rate()

    def _slots(self, variable):
        index = self._get_variable_index(variable)
        return index, self._momentums[index], self._velocities[index]

    def _backend_apply_gradients(self, grads, trainable_variables):
        replica_context = tf.distribute.get_replica_context()
        if replica_context is not None and replica_context.num_replicas_in_sync > 1:
            grads = replica_context.all_reduce(tf.distribute.ReduceOp.SUM, list(grads))
        grads = list(grads)
        learning_rate = self.learning_rate
        if self.gradient_accumulation_steps:
            steps = self.gradient_accumulation_steps
            accumulators = [
                self._accumulated_gradients[self._get_variable_index(v)] for v in trainable_variables
            ]
            totals = [ops.add(ops.cast(g, a.dtype), a.value) for g, a in zip(grads, accumulators)]
            is_update_step = ops.equal((self._iterations + 1) % steps, 0)
            applied = self._clip_gradients([ops.divide(t, steps) for t in totals])
            tf.__internal__.distribute.interim.maybe_merge_call(
                self._distributed_update,
                self._distribution_strategy,
                applied,
                trainable_variables,
                learning_rate,
                is_update_step,
                totals,
                accumulators,
            )
        else:
            applied = self._clip_gradients(grads)
            tf.__internal__.distribute.interim.maybe_merge_call(
                self._distributed_update,
                self._distribution_strategy,
                applied,
                trainable_variables,
                learning_rate,
                None,
                None,
                None,
            )

    def _distributed_update(
        self, distribution, grads, trainable_variables, learning_rate, is_update_step, totals, accumulators
    ):
        """Runs in cross-replica context (or replica context for strategies without merge_call).

        The accumulate-or-apply decision is a `tf.cond` *inside* each per-device update, never around a
        `merge_call`: MirroredStrategy cannot synchronise from inside a control-flow branch.
        """

        def apply_update(var, grad, lr):
            self.update_step(grad, var, lr)

        def apply_update_if(var, grad, lr, do_update):
            tf.cond(do_update, lambda: apply_update(var, grad, lr), lambda: None)

        def set_accumulator(acc, total, do_update):
            acc.assign(tf.where(do_update, tf.zeros_like(total), total))

        for i, (grad, var) in enumerate(zip(grads, trainable_variables)):
            var = var.value if isinstance(var, keras.Variable) else var
            if is_update_step is None:
                distribution.extended.update(var, apply_update, args=(grad, learning_rate), group=False)
            else:
                distribution.extended.update(
                    var, apply_update_if, args=(grad, learning_rate, is_update_step), group=False
                )
                distribution.extended.update(
                    accumulators[i].value, set_accumulator, args=(totals[i], is_update_step), group=False
                )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "exclude_from_weight_decay": list(self.exclude_from_weight_decay_patterns),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="plm_tf")
class AdamWeightDecay(_PretrainingOptimizer):
    """Adam with "correct" L2 weight decay and no bias correction (google-research/bert, electra).

    Per variable w with gradient g (after clipping):
        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
        u = m / (sqrt(v) + eps) + wd * w        (wd term only if w is not excluded)
        w <- w - lr * u

    Args: see `_PretrainingOptimizer`; defaults are the BERT/ELECTRA recipe (wd 0.01, b1 0.9, b2 0.999,
    eps 1e-6, exclusions LayerNorm / layer_norm / bias, global clip norm 1.0).

    Example:
        >>> opt = AdamWeightDecay(learning_rate=1e-4)
        >>> w = keras.Variable([1.0, -2.0], name="kernel")
        >>> opt.apply_gradients([(tf.constant([0.5, 0.5]), w)])
    """

    def __init__(
        self,
        learning_rate=1e-4,
        weight_decay=0.01,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        exclude_from_weight_decay=GOOGLE_EXCLUDE_FROM_WEIGHT_DECAY,
        global_clipnorm=1.0,
        gradient_accumulation_steps=None,
        name="adam_weight_decay",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            exclude_from_weight_decay=exclude_from_weight_decay,
            global_clipnorm=global_clipnorm,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )

    def _adam_direction(self, gradient, variable):
        """Updates the moments; returns m / (sqrt(v) + eps) (+ wd * w when decayed) and the slot index."""
        index, m, v = self._slots(variable)
        gradient = ops.cast(gradient, variable.dtype)
        next_m = ops.add(ops.multiply(self.beta_1, m.value), ops.multiply(1.0 - self.beta_1, gradient))
        next_v = ops.add(
            ops.multiply(self.beta_2, v.value), ops.multiply(1.0 - self.beta_2, ops.square(gradient))
        )
        self.assign(m, next_m)
        self.assign(v, next_v)
        update = ops.divide(next_m, ops.add(ops.sqrt(next_v), self.epsilon))
        if self._decay_mask[index]:
            update = ops.add(update, ops.multiply(ops.cast(self.weight_decay, variable.dtype), variable))
        return index, update

    def update_step(self, gradient, variable, learning_rate):
        _, update = self._adam_direction(gradient, variable)
        self.assign_sub(variable, ops.multiply(ops.cast(learning_rate, variable.dtype), update))


@keras.saving.register_keras_serializable(package="plm_tf")
class Lamb(AdamWeightDecay):
    """LAMB as in google-research/albert `lamb_optimizer.py` (`LAMBOptimizer`).

    Per variable: u as in `AdamWeightDecay` (no bias correction, wd * w unless excluded), then
        ratio = ||w|| / ||u|| if both norms are > 0 else 1    (norms over the whole tensor)
        w <- w - ratio * lr * u
    Variables matching `exclude_from_layer_adaptation` (default: the weight-decay exclusions, as in the
    original) use ratio 1.

    Args: see `AdamWeightDecay`, plus `exclude_from_layer_adaptation` (regular expressions or None).
    Defaults follow ALBERT's recipe (wd 0.01, eps 1e-6, clip 1.0).
    """

    def __init__(
        self,
        learning_rate=0.00176,
        weight_decay=0.01,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        exclude_from_weight_decay=GOOGLE_EXCLUDE_FROM_WEIGHT_DECAY,
        exclude_from_layer_adaptation=None,
        global_clipnorm=1.0,
        gradient_accumulation_steps=None,
        name="lamb",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            exclude_from_weight_decay=exclude_from_weight_decay,
            global_clipnorm=global_clipnorm,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        # albert: "exclude_from_layer_adaptation is set to exclude_from_weight_decay if the arg is None".
        self.exclude_from_layer_adaptation_patterns = (
            tuple(exclude_from_layer_adaptation)
            if exclude_from_layer_adaptation
            else self.exclude_from_weight_decay_patterns
        )

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._adapt_mask = [
            not _matches_any(self.exclude_from_layer_adaptation_patterns, _variable_path(v)) for v in var_list
        ]

    def update_step(self, gradient, variable, learning_rate):
        index, update = self._adam_direction(gradient, variable)
        step = ops.multiply(ops.cast(learning_rate, variable.dtype), update)
        if self._adapt_mask[index]:
            w_norm = tf.norm(variable)
            u_norm = tf.norm(update)
            ratio = tf.where(
                w_norm > 0, tf.where(u_norm > 0, w_norm / tf.where(u_norm > 0, u_norm, 1.0), 1.0), 1.0
            )
            step = ops.multiply(ratio, step)
        self.assign_sub(variable, step)

    def get_config(self):
        config = super().get_config()
        config["exclude_from_layer_adaptation"] = list(self.exclude_from_layer_adaptation_patterns)
        return config


@keras.saving.register_keras_serializable(package="plm_tf")
class FairseqAdam(_PretrainingOptimizer):
    """fairseq's Adam (`fairseq/optim/adam.py`), the RoBERTa optimizer: AdamW-style decay + bias correction.

    At update t = iterations + 1, per variable:
        w <- w - wd * lr * w                                  (every variable unless excluded)
        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
        w <- w - lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    Note eps is added to the *uncorrected* sqrt(v), as in fairseq/PyTorch.

    Args: see `_PretrainingOptimizer`. Defaults are the RoBERTa recipe: b2 0.98, eps 1e-6, wd 0.01 on all
    parameters (no exclusions), no clipping.
    """

    def __init__(
        self,
        learning_rate=6e-4,
        weight_decay=0.01,
        beta_1=0.9,
        beta_2=0.98,
        epsilon=1e-6,
        exclude_from_weight_decay=(),
        global_clipnorm=None,
        gradient_accumulation_steps=None,
        name="fairseq_adam",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            exclude_from_weight_decay=exclude_from_weight_decay,
            global_clipnorm=global_clipnorm,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )

    def update_step(self, gradient, variable, learning_rate):
        index, m, v = self._slots(variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        t = ops.cast(self.iterations + 1, dtype)
        bias_correction_1 = 1.0 - ops.power(ops.cast(self.beta_1, dtype), t)
        bias_correction_2 = 1.0 - ops.power(ops.cast(self.beta_2, dtype), t)
        if self._decay_mask[index]:
            self.assign_sub(variable, ops.multiply(ops.multiply(ops.cast(self.weight_decay, dtype), lr), variable))
        next_m = ops.add(ops.multiply(self.beta_1, m.value), ops.multiply(1.0 - self.beta_1, gradient))
        next_v = ops.add(
            ops.multiply(self.beta_2, v.value), ops.multiply(1.0 - self.beta_2, ops.square(gradient))
        )
        self.assign(m, next_m)
        self.assign(v, next_v)
        step_size = ops.divide(ops.multiply(lr, ops.sqrt(bias_correction_2)), bias_correction_1)
        self.assign_sub(
            variable, ops.multiply(step_size, ops.divide(next_m, ops.add(ops.sqrt(next_v), self.epsilon)))
        )


_OPTIMIZERS = {
    "adamw": AdamWeightDecay,
    "lamb": Lamb,
    "adam_fairseq": FairseqAdam,
}


@gin.configurable
def create_optimizer(
    name="adamw",
    learning_rate=1e-4,
    weight_decay=None,
    beta_1=None,
    beta_2=None,
    epsilon=None,
    clip_norm=None,
    gradient_accumulation_steps=1,
    exclude_from_weight_decay=None,
):
    """Builds a pretraining optimizer by recipe name.

    Args:
        name: "adamw" (BERT/ELECTRA, `AdamWeightDecay`), "lamb" (ALBERT, `Lamb`) or "adam_fairseq"
            (RoBERTa, `FairseqAdam`).
        learning_rate: float or a schedule from `plm_tf.training.schedules`.
        weight_decay, beta_1, beta_2, epsilon: None keeps the recipe's value (see each class).
        clip_norm: global-norm clip; None keeps the recipe's value (1.0 for adamw/lamb, none for
            adam_fairseq); 0 disables clipping.
        gradient_accumulation_steps: apply the mean gradient of this many micro-batches per update.
        exclude_from_weight_decay: regular expressions searched in variable paths; None keeps the recipe's
            list (LayerNorm/layer_norm/bias for adamw/lamb, nothing for adam_fairseq).

    Returns:
        A `keras.optimizers.Optimizer`. Wrap it for float16 with `plm_tf.training.precision`.
    """
    if name not in _OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {sorted(_OPTIMIZERS)}.")
    kwargs = {
        "weight_decay": weight_decay,
        "beta_1": beta_1,
        "beta_2": beta_2,
        "epsilon": epsilon,
        "global_clipnorm": clip_norm,
        "exclude_from_weight_decay": exclude_from_weight_decay,
    }
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    return _OPTIMIZERS[name](
        learning_rate=learning_rate, gradient_accumulation_steps=gradient_accumulation_steps, **kwargs
    )
