"""Loading any pretraining checkpoint for evaluation: the one function `load_pretraining_model`.

Two layouts exist:
  * a `python -m plm_tf.train` model_dir (or one of its `ckpt-N` prefixes): `operative_config.gin` beside the
    checkpoint gives the model, the tokenizer, seq_len and batch size;
  * a `python -m plm_tf.convert` output folder: `model.gin` gives the model, the vocabulary files copied beside
    it give the tokenizer (`plm_tf.convert.common` describes the layout). Evaluation needs the pretraining
    heads, so a bare encoder, or an ELECTRA discriminator converted without its generator, is refused.
"""
import os

import tensorflow as tf

from plm_tf.data import pipelines
from plm_tf.gin_config import parse_gin, query_or_none
from plm_tf.training import checkpointing

OPERATIVE_GIN = "operative_config.gin"  # written by plm_tf.training.trainer
CONVERTED_GIN = "model.gin"  # written by plm_tf.convert
# Vocabulary files of a converted folder → (tokenizer kind, file name or None for the folder itself).
_CONVERTED_VOCAB = (("vocab.txt", "wordpiece", "vocab.txt"), ("spiece.model", "sentencepiece", "spiece.model"),
                    ("30k-clean.model", "sentencepiece", "30k-clean.model"), ("vocab.json", "bpe", None))


class LoadError(ValueError):
    """A checkpoint that cannot be evaluated; the message says why."""


def _converted_vocab(directory):
    for name, kind, path in _CONVERTED_VOCAB:
        if tf.io.gfile.exists(os.path.join(directory, name)):
            return kind, os.path.join(directory, path) if path else directory
    return None, None


def load_pretraining_model(checkpoint, gin_params=()):
    """Builds the pretraining model of `checkpoint` and restores its weights.

    Args:
        checkpoint: a trainer model_dir or checkpoint prefix, or a converted-model folder.
        gin_params: extra gin bindings applied after the checkpoint's own configuration.

    Returns:
        (model, info): the restored `MaskedLMPretrainer` / `ElectraPretrainer`, and a dict with "checkpoint"
        (prefix), "layout" ("trainer" / "converted"), "objective", "tokenizer" (loaded), "vocab_path",
        "seq_len" and "batch_size" (None for converted models) and "step" (None when not recorded).
        gin stays configured with the checkpoint's bindings (the evaluation pipeline reads them).

    Raises:
        LoadError (a ValueError) for a missing or unusable checkpoint or configuration.
    """
    from plm_tf.models.builders import build_pretraining_model
    from plm_tf.models.configs import bind_vocab_size

    prefix = checkpointing.resolve_checkpoint(checkpoint, LoadError)
    directory = os.path.dirname(prefix)
    trainer_gin, converted_gin = (os.path.join(directory, name) for name in (OPERATIVE_GIN, CONVERTED_GIN))
    if tf.io.gfile.exists(trainer_gin):
        layout, gin_file = "trainer", trainer_gin
    elif tf.io.gfile.exists(converted_gin):
        layout, gin_file = "converted", converted_gin
    else:
        raise LoadError(f"{directory} has neither {OPERATIVE_GIN} (a plm_tf.train run) nor {CONVERTED_GIN} "
                        "(a plm_tf.convert output): the model configuration is unknown.")
    parse_gin([gin_file], gin_params, finalize=False)
    objective = query_or_none("build_pretraining_model.objective")
    if objective is None:
        raise LoadError(f"{gin_file} describes a bare encoder without pretraining heads; nothing to evaluate.")
    if layout == "converted":
        with tf.io.gfile.GFile(gin_file) as handle:
            if "The source had no generator" in handle.read():
                raise LoadError(f"{directory} holds an ELECTRA discriminator without its generator; "
                                "replaced-token evaluation needs both.")
        tokenizer_kind, vocab_path = _converted_vocab(directory)
        tokenizer_kind = tokenizer_kind or pipelines.DEFAULT_TOKENIZER[objective]
    else:
        tokenizer_kind = query_or_none("pretrain.tokenizer_kind") or pipelines.DEFAULT_TOKENIZER[objective]
        vocab_path = query_or_none("pretrain.vocab_path")
    tokenizer = pipelines.load_tokenizer(tokenizer_kind, vocab_path)
    bind_vocab_size(tokenizer)
    model = build_pretraining_model(objective=objective)
    model.build()
    status = tf.train.Checkpoint(model=model).read(prefix).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        message = str(error).splitlines()[0][:300]
        raise LoadError(f"{prefix} does not match the model of {gin_file}: {message}") from None
    reader = tf.train.load_checkpoint(prefix)
    step_key = "step/.ATTRIBUTES/VARIABLE_VALUE"
    step = int(reader.get_tensor(step_key)) if reader.has_tensor(step_key) else None
    info = {
        "checkpoint": prefix, "layout": layout, "objective": objective, "tokenizer": tokenizer,
        "vocab_path": vocab_path, "seq_len": query_or_none("pretrain.seq_len"),
        "batch_size": query_or_none("pretrain.batch_size"), "step": step,
    }
    return model, info
