"""GELU in the two forms the original codebases use.

- `gelu_exact`: 0.5·x·(1 + erf(x/√2)). fairseq RoBERTa (`utils.gelu`) and google-research/electra
  (`model/modeling.py` `gelu`) use this form.
- `gelu_tanh`: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). google-research/bert and google-research/albert
  `modeling.py` `gelu` use this approximation.

Both are registered Keras serializables, so layers can take them by name ("gelu_exact", "gelu_tanh") and
`get_config` round-trips.
"""
import math

import keras
from keras import ops

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@keras.saving.register_keras_serializable(package="plm_tf")
@ops.custom_gradient
def gelu_exact(x):
    """Exact GELU, x·Φ(x) with the normal CDF written through erf. Shape-preserving.

    The gradient is written out, Φ(x) + x·φ(x), rather than differentiated through the erf expression: the
    same value with a third of the element-wise backward ops, which are what a bfloat16 step on a CPU spends
    its time on.
    """
    x = ops.convert_to_tensor(x)
    one_plus_erf = 1.0 + ops.erf(x * ops.cast(_SQRT_HALF, x.dtype))
    cdf = 0.5 * one_plus_erf

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        pdf = ops.exp(-0.5 * ops.square(x)) * ops.cast(_INV_SQRT_2PI, x.dtype)
        return upstream * (cdf + x * pdf)

    return x * cdf, grad


@keras.saving.register_keras_serializable(package="plm_tf")
def gelu_tanh(x):
    """Tanh-approximate GELU (Hendrycks & Gimpel 2016, eq. in §2), as google-research/bert. Shape-preserving."""
    x = ops.convert_to_tensor(x)
    inner = _SQRT_2_OVER_PI * (x + 0.044715 * ops.power(x, 3))
    return 0.5 * x * (1.0 + ops.tanh(inner))


_BY_NAME = {"gelu_exact": gelu_exact, "gelu_tanh": gelu_tanh}


def get_activation(identifier):
    """Maps "gelu_exact" / "gelu_tanh" (or any Keras activation name, or a callable) to a callable."""
    if callable(identifier):
        return identifier
    if identifier in _BY_NAME:
        return _BY_NAME[identifier]
    try:
        return keras.activations.get(identifier)
    except ValueError as error:
        raise ValueError(
            f"Unknown activation {identifier!r}; use one of {sorted(_BY_NAME)} or a Keras activation name."
        ) from error


def activation_name(activation):
    """The serializable name of an activation given by name or callable (for `get_config`)."""
    if isinstance(activation, str):
        return activation
    for name, fn in _BY_NAME.items():
        if fn is activation:
            return name
    return keras.activations.serialize(activation)
