"""What every converter shares: the error type, name maps as `Slot`s, building the plm_tf model, and the
converted checkpoint's layout on disk.

A name map is a list of `Slot`s, one per plm_tf variable: the external tensor name(s) and whether the tensor is
stored transposed (PyTorch `nn.Linear` weights are [out, in], Keras kernels [in, out]). The same list serves
both directions, so import and export cannot drift apart. A slot may list several names for one tensor: the
first is written on export; on import any present one is read and every other present one (a tied copy, e.g.
`cls.predictions.decoder.weight` next to the word table) must hold the same values.

A converted plm_tf model directory holds:

    ckpt.index, ckpt.data-*   tf.train.Checkpoint(model=<model>, encoder=<its encoder>)
    checkpoint                the state file, so tf.train.latest_checkpoint(DIR) finds `ckpt`
    model.json                what the folder holds: family, objective, encoder config, tokenizer kind, vocabulary
                              and casing (plm_tf.convert.model_dir; what export / finetune / convert read)
    model.gin                 the same as gin bindings: encoder_config, the objective, (ELECTRA) the generator
                              size, and finetune.* / pretrain.* tokenizer bindings
    vocab.txt | spiece.model | vocab.json + merges.txt   copied from the source, or written from its
                              tokenizer.json (plm_tf.convert.vocab)

`model` is what the gin file builds: a `MaskedLMPretrainer` / `ElectraPretrainer` (restore into the trainer's
model with `tf.train.Checkpoint(model=model).restore(path).expect_partial()`), or a bare `TransformerEncoder`
when the source had no pretraining heads (then model.gin binds no objective). `encoder` is always the encoder
to fine-tune (ELECTRA: the discriminator). An ELECTRA discriminator converted without its generator is saved
as `model.discriminator` and `model.discriminator_head` only; restoring it into an `ElectraPretrainer` leaves the
generator at its initialisation.
"""
import dataclasses
import json
import os
import shutil

import numpy as np

FAMILIES = ("bert", "roberta", "albert", "electra")
CHECKPOINT_NAME = "ckpt"
GIN_NAME = "model.gin"
VOCAB_FILES = ("vocab.txt", "spiece.model", "30k-clean.model", "vocab.json", "merges.txt")  # 30k-clean: ALBERT TF1


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message names the tensor or setting and says why."""


def check_model_type(model_type):
    if model_type not in FAMILIES:
        raise ConversionError(f"Unknown model type {model_type!r}; expected one of {', '.join(FAMILIES)}.")


@dataclasses.dataclass
class Slot:
    """One plm_tf variable and the external tensor name(s) it corresponds to.

    Attributes:
        names: external names; names[0] is written on export, any is accepted on import (tied copies).
        variable: the Keras variable.
        transpose: the external tensor is the transpose of the variable (a 2-D kernel).
    """

    names: tuple
    variable: object
    transpose: bool = False

    def external_shape(self):
        shape = tuple(self.variable.shape)
        return shape[::-1] if self.transpose else shape


def load_slots(slots, tensors, source):
    """Assigns every slot from `tensors` (name → array); returns the set of names used.

    Raises:
        ConversionError: a missing tensor, a shape that does not match the configuration, or tied copies
            that differ.
    """
    used = set()
    for slot in slots:
        present = [name for name in slot.names if name in tensors]
        expected = slot.external_shape()
        if not present:
            raise ConversionError(
                f"{source}: missing tensor {slot.names[0]!r} (expected shape {list(expected)} for plm_tf "
                f"variable {slot.variable.path})."
            )
        name = present[0]
        value = np.asarray(tensors[name])
        if value.shape != expected:
            raise ConversionError(
                f"{source}: tensor {name!r} has shape {list(value.shape)}, but the configuration implies "
                f"{list(expected)} (plm_tf variable {slot.variable.path})."
            )
        for other in present[1:]:
            other_value = np.asarray(tensors[other])
            if other_value.shape != value.shape or not np.array_equal(other_value, value):
                raise ConversionError(
                    f"{source}: tensor {other!r} should be tied to {name!r} (plm_tf shares one variable, "
                    f"{slot.variable.path}), but their values differ."
                )
        if slot.transpose:
            value = value.T
        slot.variable.assign(value.astype(slot.variable.dtype))
        used.update(present)
    return used


def check_all_used(tensors, used, source, ignore=lambda name: False):
    """Raises ConversionError naming the first tensor that no slot consumed (and not ignorable)."""
    extra = sorted(name for name in tensors if name not in used and not ignore(name))
    if extra:
        more = f" (and {len(extra) - 1} more: {', '.join(extra[1:6])}{', ...' if len(extra) > 6 else ''})"
        raise ConversionError(
            f"{source}: unexpected tensor {extra[0]!r}{more if len(extra) > 1 else ''}; it has no place in the "
            f"plm_tf model this checkpoint was recognised as."
        )


def export_slots(slots):
    """name → float32 C-contiguous array, for every slot (its first name)."""
    out = {}
    for slot in slots:
        value = np.asarray(slot.variable.numpy(), dtype=np.float32)
        out[slot.names[0]] = np.ascontiguousarray(value.T if slot.transpose else value)
    return out


@dataclasses.dataclass
class ModelSpec:
    """Which plm_tf model a checkpoint holds.

    Attributes:
        model_type: one of FAMILIES.
        encoder_config: `TransformerEncoder` keyword arguments (ELECTRA pretraining: the discriminator's).
        objective: None for a bare encoder, else one of plm_tf.models.OBJECTIVES.
        generator_hidden_fraction: ELECTRA generator width / discriminator width.
        tie_embeddings: ELECTRA generator and discriminator share the embedding block.
        has_generator: ELECTRA pretraining only: the generator's weights are part of the checkpoint.
    """

    model_type: str
    encoder_config: dict
    objective: object = None
    generator_hidden_fraction: float = 0.25
    tie_embeddings: bool = True
    has_generator: bool = True


def build_model(spec):
    """The built (variables created) plm_tf model described by `spec`."""
    from plm_tf.models.encoder import TransformerEncoder
    from plm_tf.models.pretraining import ElectraPretrainer, MaskedLMPretrainer

    try:
        if spec.objective is None:
            model = TransformerEncoder(**spec.encoder_config, name="encoder")
        elif spec.objective == "electra":
            model = ElectraPretrainer(
                spec.encoder_config, generator_hidden_fraction=spec.generator_hidden_fraction,
                tie_embeddings=spec.tie_embeddings, name="pretraining_model",
            )
        else:
            model = MaskedLMPretrainer(spec.encoder_config, objective=spec.objective, name="pretraining_model")
    except ValueError as error:
        raise ConversionError(f"The configuration does not make a plm_tf model: {error}") from None
    model.build()
    return model


def main_encoder(model, spec):
    """The encoder to fine-tune: the model itself, its `.encoder`, or ELECTRA's discriminator."""
    if spec.objective is None:
        return model
    return model.discriminator if spec.objective == "electra" else model.encoder


def checkpoint_objects(model, spec):
    """The `model` trackable to save: the whole model, or ELECTRA's discriminator half without a generator."""
    import tensorflow as tf

    if spec.objective == "electra" and not spec.has_generator:
        return tf.train.Checkpoint(discriminator=model.discriminator, discriminator_head=model.discriminator_head)
    return model


def checkpoint_roots(model, spec):
    """{"model": ..., "encoder": ...}: the roots a converted checkpoint is written with. Restore the whole model
    with the same roots (`plm_tf.convert.model_dir.restore`): a variable reachable from both is stored under one
    key only, so the variable keys match only when the object structure does."""
    return {"model": checkpoint_objects(model, spec), "encoder": main_encoder(model, spec)}


def write_plm_tf(model, spec, output_dir, source, vocab_dirs=(), do_lower_case=None, tf1_config=None,
                 tf1_path=None, sentence_embedding="auto"):
    """Writes the checkpoint, the vocabulary, model.json and model.gin into `output_dir`; returns the prefix.

    The tokenizer record (kind, vocabulary, casing) comes from `plm_tf.convert.vocab.tokenizer_settings` on
    `vocab_dirs`; a source without any vocabulary is converted with a warning, and every command that needs
    the vocabulary then says so.
    """
    import tensorflow as tf
    from absl import logging

    from plm_tf.convert.model_dir import write_manifest
    from plm_tf.convert.vocab import tokenizer_settings

    os.makedirs(output_dir, exist_ok=True)
    tokenizer = tokenizer_settings(spec.model_type, vocab_dirs, output_dir, do_lower_case, tf1_config, tf1_path)
    if tokenizer is None:
        logging.warning("%s ships no vocabulary (vocab.txt, spiece.model, vocab.json + merges.txt or tokenizer.json): "
                        "the converted model cannot be fine-tuned or exported until one is added.", source)
    checkpoint = tf.train.Checkpoint(**checkpoint_roots(model, spec))
    prefix = checkpoint.write(os.path.join(output_dir, CHECKPOINT_NAME))
    with open(os.path.join(output_dir, "checkpoint"), "w", encoding="utf-8") as handle:  # the state file
        handle.write(f'model_checkpoint_path: "{CHECKPOINT_NAME}"\nall_model_checkpoint_paths: "{CHECKPOINT_NAME}"\n')
    write_manifest(output_dir, spec, tokenizer, source, sentence_embedding)
    write_gin(os.path.join(output_dir, GIN_NAME), spec, source, tokenizer, output_dir)
    return prefix


def copy_vocab(source_dirs, output_dir):
    """Copies the known vocabulary files found in the first of `source_dirs` that has any; returns their names."""
    for directory in source_dirs:
        if not directory or not os.path.isdir(directory):
            continue
        found = [name for name in VOCAB_FILES if os.path.isfile(os.path.join(directory, name))]
        if found:
            os.makedirs(output_dir, exist_ok=True)
            for name in found:
                if os.path.abspath(directory) != os.path.abspath(output_dir):
                    shutil.copyfile(os.path.join(directory, name), os.path.join(output_dir, name))
            return found
    return []


def _gin_value(value):
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool) or value is None:
        return str(value)
    return repr(value)


def write_gin(path, spec, source, tokenizer, output_dir):
    """model.gin: the bindings that rebuild exactly the converted model and its tokenizer (module docstring)."""
    lines = [
        f"# plm_tf {spec.model_type} model converted by `python -m plm_tf.convert` from {source}.",
        f"# Checkpoint: {CHECKPOINT_NAME} in this folder (tf.train.Checkpoint keys `model` and `encoder`); model.json",
        "# describes the folder to `plm_tf.export`, `plm_tf.finetune --init_checkpoint` and `plm_tf.convert`.",
        "# Fine-tune from random weights with this architecture and tokenizer:",
        "#   python -m plm_tf.finetune --gin_file=finetune/electra.gin --gin_file=<this file> --task_dir=...",
        "# Continue pretraining: a recipe first, this file second, e.g.",
        f"#   python -m plm_tf.train --gin_file=base/{spec.model_type}.gin --gin_file=<this file> ...",
        "",
    ]
    if spec.objective is None:
        lines.append("# A bare encoder (the source had no pretraining heads): TransformerEncoder(**encoder_config()).")
    else:
        lines += [f"OBJECTIVE = {spec.objective!r}", "build_pretraining_model.objective = %OBJECTIVE"]
    for key, value in spec.encoder_config.items():
        lines.append(f"encoder_config.{key} = {_gin_value(value)}")
    if spec.objective == "electra":
        lines.append(f"electra.generator_hidden_fraction = {spec.generator_hidden_fraction!r}")
        lines.append(f"electra.tie_embeddings = {spec.tie_embeddings}")
        if not spec.has_generator:
            lines.append("# The source had no generator: the checkpoint holds the discriminator and its head only.")
    if tokenizer is not None:
        vocab_path = os.path.join(os.path.abspath(output_dir), tokenizer["vocab"])
        lines += [
            "",
            f"# Tokenizer: {tokenizer['kind']}, lower_case = {tokenizer['lower_case']} "
            f"(from {tokenizer['lower_case_from']}).",
            f"finetune.tokenizer_kind = {tokenizer['kind']!r}",
            f"finetune.vocab_path = {vocab_path!r}",
            f"finetune.lower_case = {tokenizer['lower_case']}",
            f"pretrain.tokenizer_kind = {tokenizer['kind']!r}",
            f"pretrain.vocab_path = {vocab_path!r}",
        ]
        if tokenizer["lower_case"] != (tokenizer["kind"] != "bpe"):
            lines.append("# Note: plm_tf.train always uses the kind's default casing (lowercasing WordPiece and "
                         "SentencePiece).")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def resolve_checkpoint(path):
    """A checkpoint prefix from a prefix or a directory (its `checkpoint` state file, else its only *.index)."""
    from plm_tf.training.checkpointing import resolve_checkpoint as resolve

    return resolve(path, ConversionError)


def _checkpoint_vocab_size(shapes):
    for name, shape in shapes.items():
        if name.endswith("embeddings/word_embeddings/.ATTRIBUTES/VARIABLE_VALUE"):
            return int(shape[0])
    raise ConversionError("encoder_config.vocab_size is not bound and the checkpoint has no word embeddings.")


def read_plm_tf(input_path, model_type, gin_files=(), gin_params=()):
    """Rebuilds a plm_tf model from its gin configuration and restores its checkpoint.

    Args:
        input_path: a checkpoint prefix, or a directory: a converted model's folder (model.json) or a fine-tuning
            model_dir (task.json: its encoder, as a bare encoder), both read without gin; or a trainer's model_dir.
        model_type: the family, recorded in the returned spec; None = the one the directory records (a trainer
            run: the family its objective and tokenizer stand for).
        gin_files: the gin files the model was built with; default `<checkpoint folder>/model.gin`.
        gin_params: extra bindings. An unbound `encoder_config.vocab_size` (the trainer takes it from the
            vocabulary) is read from the checkpoint's word table.

    Returns:
        (model, spec, checkpoint folder).
    """
    import gin
    import tensorflow as tf

    from plm_tf.convert import model_dir
    from plm_tf.gin_config import ConfigError, parse_gin

    if not gin_files and not gin_params and (model_dir.is_model_dir(input_path) or os.path.isfile(
            os.path.join(os.path.dirname(os.fspath(input_path)), model_dir.MANIFEST))):
        return _read_model_dir(input_path, model_type)
    if model_type is None:
        model_type = model_dir.open_model_dir(input_path, ConversionError).spec.model_type
    check_model_type(model_type)
    prefix = resolve_checkpoint(input_path)
    directory = os.path.dirname(prefix)
    if not gin_files:
        # A converted folder carries model.gin; a `python -m plm_tf.train` model_dir its operative_config.gin.
        candidates = [os.path.join(directory, name) for name in (GIN_NAME, "operative_config.gin")]
        existing = [path for path in candidates if os.path.exists(path)]
        if not existing:
            raise ConversionError(
                f"No gin file given and neither {candidates[0]} nor {candidates[1]} exists: pass --gin_file (the "
                f"configuration the checkpoint was trained with)."
            )
        gin_files = existing[:1]
    shapes = dict(tf.train.list_variables(prefix))
    if not any(name.startswith(("model/", "encoder/")) for name in shapes):
        raise ConversionError(f"{prefix} is not a plm_tf checkpoint: it has no `model` key.")
    try:
        parse_gin(gin_files, gin_params)
        from plm_tf.models.builders import build_pretraining_model
        from plm_tf.models.configs import encoder_config

        if encoder_config()["vocab_size"] is None:
            parse_gin(gin_files, list(gin_params) + [f"encoder_config.vocab_size = {_checkpoint_vocab_size(shapes)}"])
        try:
            gin.query_parameter("build_pretraining_model.objective")
            has_objective = True
        except ValueError:
            has_objective = False
        if has_objective:
            model = build_pretraining_model()
            config = dict(model.encoder_config)
            if model.__class__.__name__ == "ElectraPretrainer":
                has_generator = any(name.startswith(("model/generator/", "model/generator_head/")) for name in shapes)
                spec = ModelSpec(model_type, config, "electra", model.generator_hidden_fraction,
                                 model.tie_embeddings, has_generator)
            else:
                spec = ModelSpec(model_type, config, model.objective)
        else:
            spec = ModelSpec(model_type, encoder_config(), None)
            model = None
    except (ConfigError, ValueError, RuntimeError) as error:
        raise ConversionError(f"Cannot build the model from {', '.join(gin_files)}: {error}") from None
    if model is None:
        model = build_model(spec)
    else:
        model.build()
    try:
        status = tf.train.Checkpoint(model=checkpoint_objects(model, spec)).read(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except ValueError as error:  # a variable of another shape
        raise ConversionError(f"{prefix} does not fit the model built from {', '.join(gin_files)}: {error}") from None
    except AssertionError as error:
        raise ConversionError(
            f"{prefix} does not hold every variable of the model built from {', '.join(gin_files)}: "
            f"{str(error).splitlines()[0][:500]}"
        ) from None
    return model, spec, directory


def _read_model_dir(input_path, model_type):
    """read_plm_tf for a converted folder or a fine-tuning run: the model the directory describes, restored."""
    import tensorflow as tf

    from plm_tf.convert.model_dir import open_model_dir, restore

    found = open_model_dir(input_path, ConversionError)
    spec = found.spec
    if model_type is not None and spec.model_type not in (None, model_type):
        raise ConversionError(f"--model_type={model_type}, but {found.directory} holds a {spec.model_type} model.")
    spec.model_type = spec.model_type or model_type
    if spec.model_type is None:
        raise ConversionError(f"{found.directory} does not record its model family: pass --model_type.")
    check_model_type(spec.model_type)
    model = build_model(spec)
    if found.kind == "finetuning":  # the encoder of the best epoch's ClassifierModel
        restore(found.prefix, {"model": tf.train.Checkpoint(encoder=model)}, ConversionError,
                scope=("model/encoder/",), what="the encoder of task.json")
    else:
        restore(found.prefix, checkpoint_roots(model, spec), ConversionError, what="the model of model.json")
    return model, spec, found.directory


def read_json(path, error=None):
    """The parsed JSON file at `path`; an unreadable or malformed file raises `error` (default ConversionError)
    with one line naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as problem:
        raise (error or ConversionError)(f"{path}: cannot read ({problem}).") from None
