"""The weight initializer every original codebase uses.

google-research/bert `create_initializer`: `tf.truncated_normal_initializer(stddev=0.02)` (values beyond two
standard deviations are re-drawn); ALBERT, ELECTRA and fairseq RoBERTa (normal 0.02) agree on the scale.
"""
import keras


def truncated_normal(stddev=0.02):
    """TruncatedNormal(mean 0, `stddev`), re-drawing beyond 2·stddev like `tf.truncated_normal_initializer`."""
    return keras.initializers.TruncatedNormal(mean=0.0, stddev=stddev)
