"""LayerNorm over the last axis with its backward pass written out.

The math is google-research/bert `modeling.py` `layer_norm` (`tf.contrib.layers.layer_norm` over the last axis,
biased variance, ε inside the square root), computed in float32 even under mixed precision, as Keras does.
It subclasses `keras.layers.LayerNormalization` (same `gamma`/`beta` variables, names and config, so
checkpoints and converters see no difference) and replaces only the computation: Keras differentiates through
`moments`, which costs about twice the element-wise ops of the closed-form gradient

    x̂ = (x − μ)·r,  r = 1/√(σ² + ε),  y = γ·x̂ + β
    ∂x = r·(g − mean(g) − x̂·mean(g·x̂)),  g = γ·∂y;   ∂γ = Σ ∂y·x̂;   ∂β = Σ ∂y

and a bfloat16 step on a CPU spends its time on element-wise ops, not matmuls.
"""
import keras
from keras import ops


def _layer_norm(x, gamma, beta, epsilon):
    """float32 x [..., H], gamma [H], beta [H] → float32 [..., H], with the closed-form gradient."""

    @ops.custom_gradient
    def normalize(x, gamma, beta):
        mean = ops.mean(x, axis=-1, keepdims=True)
        centered = x - mean
        variance = ops.mean(ops.square(centered), axis=-1, keepdims=True)
        inverse_std = ops.rsqrt(variance + epsilon)
        normalized = centered * inverse_std

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            reduce_axes = tuple(range(len(upstream.shape) - 1))
            d_beta = ops.sum(upstream, axis=reduce_axes)
            d_gamma = ops.sum(upstream * normalized, axis=reduce_axes)
            d_normalized = upstream * gamma
            d_x = inverse_std * (
                d_normalized
                - ops.mean(d_normalized, axis=-1, keepdims=True)
                - normalized * ops.mean(d_normalized * normalized, axis=-1, keepdims=True)
            )
            return d_x, d_gamma, d_beta

        return normalized * gamma + beta, grad

    return normalize(x, gamma, beta)


@keras.saving.register_keras_serializable(package="plm_tf")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization(axis=-1)` with a closed-form gradient (see the module docstring).

    Args: `epsilon` (1e-12 in BERT, ELECTRA and RoBERTa-as-converted; fairseq uses 1e-5) and the other
    arguments of `keras.layers.LayerNormalization`; only the last axis, with both `gamma` and `beta`, is
    supported (that is every LayerNorm of these models).

    Call: float [..., H] → same shape, in the layer's compute dtype.

    Example:
        >>> LayerNorm(epsilon=1e-12)(tf.random.normal([2, 5, 8]))   # zero mean, unit variance over 8
    """

    def __init__(self, epsilon=1e-12, **kwargs):
        super().__init__(epsilon=epsilon, **kwargs)
        if self.axis not in (-1, [-1]) or not (self.center and self.scale) or self.rms_scaling:
            raise ValueError("LayerNorm normalises the last axis with gamma and beta; use "
                             "keras.layers.LayerNormalization for other variants.")

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        outputs = _layer_norm(x, ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32"), self.epsilon)
        return ops.cast(outputs, self.compute_dtype)
