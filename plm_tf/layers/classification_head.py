"""Sentence-level heads: the NSP / SOP pair classifier and the fine-tuning classifier / regressor.

- Pretraining pair head (google-research/bert `get_next_sentence_output`, reused by ALBERT for SOP): a plain
  Dense(2) on the pooled output, no dropout.
- Fine-tuning head (google-research/bert `run_classifier.py`, google-research/electra
  `finetune/classification`): Dropout(0.1) then Dense(num_classes) on the sentence representation
  (the pooled output, or ELECTRA's [CLS] hidden state since it has no pooler). num_classes = 1 is regression.
"""
import keras

from plm_tf.layers.dropout import Dropout
from plm_tf.layers.initializers import truncated_normal


@keras.saving.register_keras_serializable(package="plm_tf")
class ClassificationHead(keras.layers.Layer):
    """Dropout → Dense(num_classes) on a sentence representation.

    Args:
        num_classes: output width (2 for NSP/SOP, the label count for classification, 1 for regression).
        dropout_rate: dropout before the dense (0.0 for the pretraining pair head, 0.1 fine-tuning).
        initializer_range: stddev of the truncated-normal initializer.

    Call: `sentence_representation` float [B, H] → float logits [B, num_classes].
    """

    def __init__(self, num_classes, dropout_rate=0.1, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate
        self.initializer_range = initializer_range
        self.dropout = Dropout(dropout_rate, dtype=self.dtype_policy, name="dropout")
        self.classifier = keras.layers.Dense(
            num_classes, kernel_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy, name="classifier",
        )

    def build(self, input_shape):
        self.classifier.build((None, input_shape[-1]))
        self.built = True

    def call(self, sentence_representation, training=False):
        return self.classifier(self.dropout(sentence_representation, training=training))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes, dropout_rate=self.dropout_rate, initializer_range=self.initializer_range
        )
        return config


def sentence_pair_head(name="sentence_pair", initializer_range=0.02, **kwargs):
    """The 2-way NSP / SOP head on the pooled output: Dense(2), no dropout (google-research/bert, albert)."""
    return ClassificationHead(2, dropout_rate=0.0, initializer_range=initializer_range, name=name, **kwargs)
