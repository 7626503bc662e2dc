"""The fine-tuning model: a pretrained (or fresh) encoder + `ClassificationHead`, and encoder restoring.

Sentence representation (what the head reads):
- the pooled output (tanh Dense on the first token) when the encoder has a pooler: BERT / ALBERT
  (google-research/bert `run_classifier.create_model`), and RoBERTa, whose fairseq classification head is
  the same Dense(H, tanh) → dropout → Dense(C) on `<s>` (our RoBERTa pretraining leaves that pooler untrained,
  as fairseq's head is new at fine-tuning time);
- the first token's final hidden state for ELECTRA (no pooler).

`restore_encoder(checkpoint)` returns the encoder that fine-tuning keeps from any plm_tf model directory
(`plm_tf.convert.model_dir`): a converted folder's `encoder` entry (model.json), a fine-tuning run's best encoder
(task.json), or — rebuilt from a `python -m plm_tf.train` run's `operative_config.gin` — the ELECTRA
discriminator or the masked-LM model's encoder.
"""
import os

import gin
import keras
import tensorflow as tf

from plm_tf.gin_config import parse_gin, query_or_none
from plm_tf.layers.classification_head import ClassificationHead
from plm_tf.models.encoder import TransformerEncoder
from plm_tf.training import checkpointing


@keras.saving.register_keras_serializable(package="plm_tf")
class ClassifierModel(keras.Model):
    """Encoder → sentence representation → Dropout → Dense(num_classes).

    Args:
        encoder: a `TransformerEncoder`.
        num_classes: number of classes, 1 for regression.
        dropout_rate: dropout before the classifier (0.1 in BERT, ELECTRA, ALBERT and RoBERTa recipes).

    Call: {"input_ids", "input_mask", "segment_ids"} int [B, T] → logits float [B, num_classes]
    (scores [B, 1] for regression).
    """

    def __init__(self, encoder, num_classes, dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate
        self.head = ClassificationHead(
            num_classes, dropout_rate=dropout_rate, initializer_range=encoder.initializer_range, name="task_head")

    def build(self, input_shape=None):
        if not self.encoder.built:
            self.encoder.build()
        self.head.build((None, self.encoder.hidden_size))
        self.built = True

    def sentence_representation(self, encoded):
        if self.encoder.pooler is not None:
            return encoded["pooled_output"]
        return encoded["sequence_output"][:, 0, :]

    def call(self, features, training=False):
        encoded = self.encoder(features, training=training)
        return self.head(self.sentence_representation(encoded), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(encoder=keras.saving.serialize_keras_object(self.encoder), num_classes=self.num_classes,
                      dropout_rate=self.dropout_rate)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


class CheckpointError(ValueError):
    """An init checkpoint that cannot be found or does not fit; the message says which."""


def resolve_checkpoint(init_checkpoint):
    """(checkpoint prefix, run directory) for a prefix (`DIR/ckpt-600`) or a pretraining model_dir (latest)."""
    prefix = checkpointing.resolve_checkpoint(init_checkpoint, CheckpointError)
    return prefix, os.path.dirname(prefix)


def restore_encoder(init_checkpoint):
    """Restores the fine-tunable encoder of any plm_tf model directory (`plm_tf.convert.model_dir`).

    Args:
        init_checkpoint: a converted model folder (model.json), a fine-tuning model_dir (task.json: its best
            epoch's encoder, to fine-tune further), or a `python -m plm_tf.train` checkpoint prefix / model_dir
            (its `operative_config.gin` beside the checkpoint).

    Returns:
        (encoder, info): the `TransformerEncoder` with restored weights, and a dict with "checkpoint",
        "objective", "model_type", "tokenizer_kind", "vocab_path" (None = the embedded vocab), "lower_case"
        (None = the kind's default) and "encoder_config".

    Note: may parse the run's gin config (gin is cleared); parse the fine-tuning gin files afterwards.
    """
    from plm_tf.convert.model_dir import open_model_dir, restore

    found = open_model_dir(init_checkpoint, CheckpointError)
    if found.kind == "pretraining":
        encoder, info = _restore_pretraining_encoder(found.prefix)
        info["model_type"] = found.spec.model_type
        return encoder, info
    tokenizer = found.require_tokenizer(CheckpointError)
    encoder = new_encoder(found.spec.encoder_config)
    if found.kind == "converted":
        restore(found.prefix, {"encoder": encoder}, CheckpointError, what="the encoder of model.json")
    else:  # a fine-tuning run saved the whole ClassifierModel under `model`
        restore(found.prefix, {"model": tf.train.Checkpoint(encoder=encoder)}, CheckpointError,
                scope=("model/encoder/",), what="the encoder of task.json")
    objective = found.spec.objective if found.kind == "converted" else None
    info = {"checkpoint": found.prefix, "objective": objective, "model_type": found.spec.model_type,
            "tokenizer_kind": tokenizer.kind, "vocab_path": tokenizer.vocab, "lower_case": tokenizer.lower_case,
            "encoder_config": dict(found.spec.encoder_config)}
    return encoder, info


def _restore_pretraining_encoder(prefix):
    """The encoder of a `python -m plm_tf.train` checkpoint, rebuilt from the run's operative_config.gin."""
    from plm_tf.data import pipelines
    from plm_tf.models.builders import build_pretraining_model
    from plm_tf.models.configs import encoder_config
    from plm_tf.training import precision
    from plm_tf.training.optimizers import create_optimizer

    run_dir = os.path.dirname(prefix)
    operative = os.path.join(run_dir, "operative_config.gin")
    if not tf.io.gfile.exists(operative):
        raise CheckpointError(f"{operative} is missing: it gives the encoder configuration of {prefix}.")
    parse_gin([operative], finalize=False)
    objective = query_or_none("pretrain.objective")
    if objective is None:
        raise CheckpointError(f"{operative} binds no pretrain.objective; is it a `python -m plm_tf.train` run?")
    tokenizer_kind = query_or_none("pretrain.tokenizer_kind") or pipelines.DEFAULT_TOKENIZER[objective]
    vocab_path = query_or_none("pretrain.vocab_path")
    config = encoder_config()
    model = build_pretraining_model(objective=objective)
    model.build()
    # The optimizer is restored too: it lists every trainable variable (`optimizer/_trainable_variables/i`),
    # which reaches the weights even in checkpoints whose model object graph does not (transformer blocks
    # were only reachable through a Keras list before `TransformerEncoder` set one attribute per block).
    optimizer = precision.wrap_optimizer(create_optimizer(), policy=query_or_none("pretrain.precision_policy"))
    optimizer.build(model.trainable_variables)
    status = tf.train.Checkpoint(model=model, optimizer=optimizer).restore(prefix).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        message = str(error).splitlines()[0][:500]
        raise CheckpointError(f"{prefix} does not match the model of {operative}: {message}") from None
    encoder = model.discriminator if objective == "electra" else model.encoder
    info = {"checkpoint": prefix, "objective": objective, "tokenizer_kind": tokenizer_kind,
            "vocab_path": vocab_path, "lower_case": None, "encoder_config": dict(config, use_pooler=encoder.pooler is not None)}
    gin.clear_config()
    return encoder, info


def new_encoder(config):
    """A freshly initialised encoder (random-init baseline, or converted weights loaded afterwards)."""
    encoder = TransformerEncoder(**config, name="encoder")
    encoder.build()
    return encoder
