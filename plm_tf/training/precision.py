"""Mixed precision: the Keras global dtype policy and float16 loss scaling for the custom train loop.

Policies (Keras 3 `keras.mixed_precision`):

* "float32" (default): everything in float32.
* "mixed_bfloat16": layers compute in bfloat16, variables stay float32. Use on TPU and on CPUs with
  AMX/AVX512-BF16. bfloat16 has float32's exponent range, so no loss scaling is needed.
* "mixed_float16": compute in float16 (GPU tensor cores), variables float32. float16 gradients underflow,
  so the optimizer is wrapped in `keras.optimizers.LossScaleOptimizer` (dynamic loss scale, skipped steps on
  inf/NaN), as google-research/bert's `use_fp16` path scales the loss by a constant 128.

The train step, for any policy:

    with tf.GradientTape() as tape:
        loss = compute_loss(...)                        # float32
        scaled = precision.scale_loss(optimizer, loss)  # identity unless loss scaling
    grads = tape.gradient(scaled, variables)
    optimizer.apply_gradients(zip(grads, variables))    # LossScaleOptimizer unscales before clipping

or `precision.minimize(optimizer, tape, scaled, variables)` after the tape block. Gradients of a scaled
loss must be passed to `apply_gradients` *still scaled*; `unscale_gradients` is for reporting (e.g. the
gradient norm) only.
"""

import gin
import keras
import tensorflow as tf

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


@gin.configurable
def set_precision(policy="float32"):
    """Sets the Keras global dtype policy (affects layers created afterwards) and returns its name.

    Args:
        policy: one of `POLICIES`.

    Raises:
        ValueError: for any other name.
    """
    if policy not in POLICIES:
        raise ValueError(f"Unknown precision policy {policy!r}; choose one of {list(POLICIES)}.")
    keras.mixed_precision.set_global_policy(policy)
    return policy


def current_policy():
    """Name of the Keras global dtype policy ("float32", "mixed_bfloat16", ...)."""
    return keras.mixed_precision.global_policy().name


def needs_loss_scaling(policy=None):
    """True for float16 compute, the only policy whose gradients need loss scaling."""
    return (policy or current_policy()) == "mixed_float16"


def wrap_optimizer(optimizer, policy=None):
    """Wraps `optimizer` in a dynamic `LossScaleOptimizer` under mixed_float16; returns it unchanged otherwise.

    Args:
        optimizer: a `keras.optimizers.Optimizer` (e.g. from `optimizers.create_optimizer`).
        policy: policy name; defaults to the current global policy.
    """
    if needs_loss_scaling(policy) and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _loss_scale(optimizer):
    if not optimizer.built:
        # Before `build` the scale is a Python constant, which a traced train step would freeze.
        raise ValueError(
            "Build the LossScaleOptimizer before tracing the train step: "
            "call optimizer.build(model.trainable_variables) first."
        )
    return optimizer.dynamic_scale


def scale_loss(optimizer, loss):
    """Casts `loss` to float32 and multiplies it by the optimizer's current loss scale (if it has one).

    Raises:
        ValueError: if `optimizer` is an unbuilt `LossScaleOptimizer`.
    """
    loss = tf.cast(loss, tf.float32)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return loss * tf.cast(_loss_scale(optimizer), tf.float32)
    return loss


def unscale_gradients(optimizer, grads):
    """Divides gradients of a scaled loss by the current loss scale, for reporting only.

    Do not pass the result to `apply_gradients`: `LossScaleOptimizer` unscales by itself.
    """
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return list(grads)
    scale = _loss_scale(optimizer)
    return [None if g is None else g / tf.cast(scale, g.dtype) for g in grads]


def minimize(optimizer, tape, scaled_loss, variables):
    """Differentiates `scaled_loss` on `tape`, applies the gradients, returns them unscaled (for reporting).

    `scaled_loss` is `scale_loss(optimizer, loss)` computed inside the `tape` block; call this after it.
    """
    grads = tape.gradient(scaled_loss, variables)
    unscaled = unscale_gradients(optimizer, grads)  # before apply, which may change the scale
    optimizer.apply_gradients(zip(grads, variables))
    return unscaled
