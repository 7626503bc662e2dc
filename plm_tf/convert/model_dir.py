"""A plm_tf model directory: one folder that `export`, `finetune`, `predict`-ready exports and `convert` take as is.

Three producers write one, and `open_model_dir(DIR)` reads each:

    converted   `python -m plm_tf.convert --to=plm_tf`: model.json (below), model.gin, ckpt.*, vocabulary files
    pretraining `python -m plm_tf.train`: operative_config.gin + ckpt-N (+ optimizer and data state)
    fine-tuning `python -m plm_tf.finetune`: task.json (labels, seq_len, encoder config, tokenizer) + best/ckpt-N

model.json (converted):

    {"format": 1, "model_type": "bert", "objective": null | "mlm" | "mlm_nsp" | "mlm_sop" | "electra",
     "encoder_config": {TransformerEncoder kwargs}, "generator_hidden_fraction", "tie_embeddings", "has_generator",
     "checkpoint": "ckpt", "sentence_embedding": "auto" | "mean" | "cls",
     "tokenizer": {"kind", "vocab" (a file in DIR), "lower_case", "lower_case_from"} | null, "source": "..."}

`restore(prefix, objects, error)` restores `tf.train.Checkpoint(**objects)` after comparing every variable key
the objects need with what the checkpoint holds, and names exactly what is missing, extra or of another shape.
"""
import dataclasses
import json
import os
import tempfile

from plm_tf.convert.common import CHECKPOINT_NAME, FAMILIES, ModelSpec, read_json

MANIFEST = "model.json"
TASK_FILE = "task.json"
OPERATIVE_CONFIG = "operative_config.gin"
_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"
# The family a `python -m plm_tf.train` objective stands for (RoBERTa's "mlm" with the byte-level BPE).
_FAMILY_OF_OBJECTIVE = {"electra": "electra", "mlm_sop": "albert", "mlm_nsp": "bert"}


@dataclasses.dataclass
class TokenizerSpec:
    """kind ("wordpiece" / "sentencepiece" / "bpe"), vocab (a path; None = plm_tf's embedded vocabulary of
    that kind) and lower_case (None = the kind's default)."""

    kind: str
    vocab: object = None
    lower_case: object = None

    def load(self):
        from plm_tf.data import assets
        from plm_tf.data.tokenizers import load_tokenizer

        return load_tokenizer(self.kind, self.vocab or assets.default_vocab_path(self.kind), self.lower_case)


@dataclasses.dataclass
class ModelDir:
    """What a model directory holds (see the module docstring).

    Attributes:
        kind: "converted", "pretraining" or "finetuning".
        directory: the folder; prefix: the checkpoint prefix to restore.
        spec: ModelSpec (model_type may be None for a pretraining run whose family cannot be told).
        tokenizer: TokenizerSpec, or None when a converted source shipped no vocabulary.
        sentence_embedding: the `encode` default recorded by the converter ("auto" otherwise).
        task: a fine-tuning run's task.json dict (None otherwise).
    """

    kind: str
    directory: str
    prefix: str
    spec: ModelSpec
    tokenizer: object
    sentence_embedding: str = "auto"
    task: object = None

    def require_tokenizer(self, error=ValueError):
        """The TokenizerSpec; `error` with one readable line when the directory has no vocabulary."""
        if self.tokenizer is None:
            raise error(f"{self.directory} has no vocabulary: its source shipped none of vocab.txt, spiece.model, "
                        f"vocab.json + merges.txt or tokenizer.json. Put the vocabulary next to the source "
                        f"checkpoint and convert again.")
        return self.tokenizer


def write_manifest(output_dir, spec, tokenizer, source, sentence_embedding="auto"):
    """Writes model.json for a converted model (see the module docstring)."""
    manifest = {
        "format": 1, "model_type": spec.model_type, "objective": spec.objective,
        "encoder_config": spec.encoder_config, "generator_hidden_fraction": spec.generator_hidden_fraction,
        "tie_embeddings": spec.tie_embeddings, "has_generator": spec.has_generator,
        "checkpoint": CHECKPOINT_NAME, "sentence_embedding": sentence_embedding, "tokenizer": tokenizer,
        "source": source,
    }
    with open(os.path.join(output_dir, MANIFEST), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")


def is_model_dir(path):
    """True for a folder holding model.json or task.json (the two self-describing layouts)."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, name)) for name in (MANIFEST, TASK_FILE))


def _converted(directory, error):
    path = os.path.join(directory, MANIFEST)
    manifest = read_json(path, error)
    try:
        spec = ModelSpec(manifest["model_type"], dict(manifest["encoder_config"]), manifest["objective"],
                         manifest["generator_hidden_fraction"], manifest["tie_embeddings"], manifest["has_generator"])
        prefix = os.path.join(directory, manifest["checkpoint"])
    except (KeyError, TypeError) as problem:
        raise error(f"{path} is not a plm_tf model.json: no {problem}.") from None
    if spec.model_type not in FAMILIES:
        raise error(f"{path}: unknown model_type {spec.model_type!r}.")
    if not os.path.exists(prefix + ".index"):
        raise error(f"{path} names the checkpoint {prefix}, which does not exist.")
    record = manifest.get("tokenizer")
    tokenizer = None
    if record:
        tokenizer = TokenizerSpec(record["kind"], os.path.join(directory, record["vocab"]), record["lower_case"])
    return ModelDir("converted", directory, prefix, spec, tokenizer, manifest.get("sentence_embedding", "auto"))


def _finetuned(directory, error):
    import tensorflow as tf

    task = read_json(os.path.join(directory, TASK_FILE), error)
    prefix = tf.train.latest_checkpoint(os.path.join(directory, "best"))
    if prefix is None:
        raise error(f"{directory}/best holds no checkpoint: the fine-tuning run did not finish an epoch.")
    spec = ModelSpec(task.get("model_type"), dict(task["encoder_config"]), None)
    tokenizer = TokenizerSpec(task["tokenizer_kind"], task["vocab_path"], task.get("lower_case"))
    return ModelDir("finetuning", directory, prefix, spec, tokenizer, task=task)


def _pretraining(path, error):
    """A `python -m plm_tf.train` model_dir (or one of its checkpoint prefixes): read from operative_config.gin."""
    from plm_tf.data import pipelines
    from plm_tf.gin_config import parse_gin, query_or_none
    from plm_tf.training.checkpointing import resolve_checkpoint

    prefix = resolve_checkpoint(path, error)
    directory = os.path.dirname(prefix)
    operative = os.path.join(directory, OPERATIVE_CONFIG)
    if not os.path.exists(operative):
        raise error(f"{directory} is not a plm_tf model directory: it has no {MANIFEST} (written by "
                    f"`plm_tf.convert`), {TASK_FILE} (`plm_tf.finetune`) or {OPERATIVE_CONFIG} (`plm_tf.train`).")
    parse_gin([operative], finalize=False)
    objective = query_or_none("pretrain.objective")
    if objective is None:
        raise error(f"{operative} binds no pretrain.objective; is it a `python -m plm_tf.train` run?")
    kind = query_or_none("pretrain.tokenizer_kind") or pipelines.DEFAULT_TOKENIZER[objective]
    family = _FAMILY_OF_OBJECTIVE.get(objective, "roberta" if kind == "bpe" else "bert")
    spec = ModelSpec(family, {}, objective)
    return ModelDir("pretraining", directory, prefix, spec, TokenizerSpec(kind, query_or_none("pretrain.vocab_path")))


def open_model_dir(path, error=ValueError):
    """The ModelDir at `path`: a converted folder, a fine-tuning model_dir, or a pretraining model_dir / prefix.

    Raises:
        error: nothing usable at `path`, with one line saying what was looked for.
    """
    path = os.fspath(path)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST)):
        return _converted(path, error)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, TASK_FILE)):
        return _finetuned(path, error)
    parent = os.path.dirname(path)
    if not os.path.isdir(path) and os.path.isfile(os.path.join(parent, MANIFEST)):
        found = _converted(parent, error)
        found.prefix = path
        return found
    return _pretraining(path, error)


# ---------------------------------------------------------------------------------------------- restoring


def _variable_shapes(entries):
    return {name[:-len(_VALUE)]: list(shape) for name, shape in entries if name.endswith(_VALUE)}


def expected_variables(objects):
    """{checkpoint key (without the VARIABLE_VALUE suffix): shape} that `tf.train.Checkpoint(**objects)` writes."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="plm_tf_keys_") as scratch:
        prefix = tf.train.Checkpoint(**objects).write(os.path.join(scratch, "probe"))
        return _variable_shapes(tf.train.list_variables(prefix))


def _listing(items, more_after=4):
    shown = ", ".join(items[:more_after])
    return shown + (f" (and {len(items) - more_after} more)" if len(items) > more_after else "")


def restore(prefix, objects, error=ValueError, scope=None, what="the model"):
    """Restores `tf.train.Checkpoint(**objects)` from `prefix`, every variable or none.

    Args:
        prefix: the checkpoint prefix.
        objects: {root name: trackable}, e.g. {"encoder": encoder}.
        error: exception class raised on a mismatch.
        scope: checkpoint key prefixes compared with the objects (default: each root name + "/"); keys outside
            the scope (the optimizer, a generator not asked for) are ignored.
        what: how the message calls the objects.

    Raises:
        error: one line naming the variables the checkpoint lacks, those it has beyond the objects, and those
            of another shape (at most four of each, with counts).
    """
    import tensorflow as tf

    scope = tuple(scope or (f"{name}/" for name in objects))
    expected = expected_variables(objects)
    saved = {key: shape for key, shape in _variable_shapes(tf.train.list_variables(prefix)).items()
             if key.startswith(scope)}
    missing = sorted(key for key in expected if key not in saved)
    extra = sorted(key for key in saved if key not in expected)
    shapes = sorted(f"{key} {saved[key]} (needs {expected[key]})" for key in expected
                    if key in saved and saved[key] != expected[key])
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: " + _listing([f"{key} {expected[key]}" for key in missing]))
    if extra:
        problems.append(f"extra {len(extra)}: " + _listing([f"{key} {saved[key]}" for key in extra]))
    if shapes:
        problems.append(f"other shape {len(shapes)}: " + _listing(shapes))
    if problems:
        raise error(f"{prefix} does not fit {what}: " + "; ".join(problems) + ".")
    tf.train.Checkpoint(**objects).read(prefix).expect_partial().assert_existing_objects_matched()
