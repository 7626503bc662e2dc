"""NumPy reference computations of the model math, written from the papers' formulas."""
import math

import numpy as np

_erf = np.vectorize(math.erf)


def gelu_exact(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


def dense(x, kernel, bias):
    return x @ kernel + bias


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def self_attention(x, mask, q, k, v, o, num_heads):
    """x [B,T,H]; mask [B,T]; q/k/v/o = (kernel, bias) pairs. Scaled dot product, −10000 on padded keys."""
    b, t, h = x.shape
    d = h // num_heads

    def heads(y):
        return y.reshape(b, t, num_heads, d).transpose(0, 2, 1, 3)

    qh, kh, vh = heads(dense(x, *q)), heads(dense(x, *k)), heads(dense(x, *v))
    scores = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(d) + (1.0 - mask[:, None, None, :]) * -10000.0
    context = (softmax(scores) @ vh).transpose(0, 2, 1, 3).reshape(b, t, h)
    return dense(context, *o)
