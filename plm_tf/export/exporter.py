"""Writing serving SavedModels: from an in-memory model (end of training) or from a trainer checkpoint.

    from plm_tf.export.exporter import export_saved_model
    export_saved_model(model, tokenizer, "runs/electra_small/export", max_seq_length=128)

    # or, from a model_dir written by `python -m plm_tf.train`:
    model, tokenizer = load_from_checkpoint("runs/electra_small")
    export_saved_model(model, tokenizer, "/tmp/electra_small_serving")

Loading the result needs `import tensorflow_text` first (the tokenizers use its ops); see
`plm_tf.export.serving` for the signatures.
"""
import os
import shutil
import tempfile

import tensorflow as tf

from plm_tf.export.serving import ExportError, ServingModule
from plm_tf.model_card import write_model_card
from plm_tf.training import checkpointing

OPERATIVE_CONFIG = "operative_config.gin"


def export_saved_model(model, tokenizer, output_dir, max_seq_length=128, sentence_embedding="auto",
                       overwrite=True):
    """Writes the serving SavedModel of a pretraining model.

    Args:
        model: a built `ElectraPretrainer` (the discriminator and its head are exported) or `MaskedLMPretrainer`
            (encoder and masked-LM head), holding the weights to serve.
        tokenizer: the `plm_tf.data.tokenizers` tokenizer the model was trained with; its vocabulary files are
            copied into `output_dir/assets`.
        output_dir: the SavedModel directory. It is written to a temporary sibling and renamed at the end, so
            a reader never sees a half-written export.
        max_seq_length: T, the padded length of the text signatures (≤ the model's position table).
        sentence_embedding: "auto", "pooled", "mean" or "cls" (see `plm_tf.export.serving`).
        overwrite: replace an existing `output_dir`; False raises ExportError instead.

    Returns:
        `output_dir` (str).
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    if os.path.exists(output_dir) and not overwrite:
        raise ExportError(f"{output_dir} exists; pass overwrite=True (--overwrite) to replace it.")
    module = ServingModule(model, tokenizer, max_seq_length=max_seq_length, sentence_embedding=sentence_embedding)
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would hide the export from a server of another user
    try:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        write_model_card(staging, export_facts(model, tokenizer, max_seq_length, sentence_embedding))
        if os.path.exists(output_dir):
            shutil.rmtree(output_dir)
        os.rename(staging, output_dir)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return output_dir


# The family an export's objective stands for (None: a bare encoder, whose family the model does not record).
_FAMILY = {"electra": "ELECTRA", "mlm": "RoBERTa", "mlm_nsp": "BERT", "mlm_sop": "ALBERT"}
_ANSWERS = {"electra": "replaced-token detection (serving_default, serving_pairs)",
            "mlm": "fill-mask (fill_mask)", "mlm_nsp": "fill-mask (fill_mask)", "mlm_sop": "fill-mask (fill_mask)",
            None: "sentence embeddings (serving_default = encode)"}


def export_facts(model, tokenizer, max_seq_length=128, sentence_embedding="auto"):
    """What an export folder is, as the facts of its model card (`README.md`, see `plm_tf.model_card`).

    Args: as `export_saved_model`.
    Returns:
        {"title", "summary", "model": {...}, "vocab": {...}, "load"}: the family and objective, the served
        encoder's sizes, the tokenizer's kind, size and casing, and the `plm_tf.predict` / Python lines that
        load the export.
    """
    from plm_tf.export.serving import resolve_sentence_embedding, serving_parts

    objective, encoder, _ = serving_parts(model)
    family = _FAMILY.get(objective, "bare encoder")
    return {
        "title": f"{family} serving export (SavedModel)",
        "summary": f"Raw text in, {_ANSWERS[objective]} out; every signature also encodes (encode, "
                   f"encode_pairs). Load it after `import tensorflow_text`.",
        "model": {"objective": objective or "none", "layers": encoder.num_layers, "hidden": encoder.hidden_size,
                  "heads": encoder.num_heads, "max_seq_length": max_seq_length,
                  "sentence_embedding": resolve_sentence_embedding(sentence_embedding, objective,
                                                                   encoder.pooler is not None)},
        "vocab": {"tokenizer": tokenizer.kind, "size": tokenizer.vocab_size,
                  "lowercases": getattr(tokenizer, "lower_case", False)},
        "load": "python -m plm_tf.predict --saved_model=THIS_FOLDER \"a text\"",
    }


def resolve_checkpoint(checkpoint):
    """A checkpoint prefix (`.../ckpt-6`) as given, or the latest checkpoint of a model_dir; ExportError if none."""
    return checkpointing.resolve_checkpoint(checkpoint, ExportError)


def default_gin_files(checkpoint):
    """[<model_dir>/operative_config.gin] for a checkpoint inside a trainer model_dir, else []."""
    checkpoint = os.fspath(checkpoint)
    model_dir = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    path = os.path.join(model_dir, OPERATIVE_CONFIG)
    return [path] if os.path.exists(path) else []


def build_from_gin(gin_files, gin_params=()):
    """Parses gin and builds the (randomly initialised) pretraining model and its tokenizer.

    Args:
        gin_files: gin files (a path or a name under gin/), e.g. ["testing/electra_tiny.gin"].
        gin_params: extra gin bindings.
    Returns:
        (model, tokenizer): the built model, and the tokenizer bound by `pretrain.tokenizer_kind` /
        `pretrain.vocab_path` (None = the objective's default kind and the embedded vocabulary).
        `encoder_config.vocab_size = None` is resolved to the tokenizer's size, as the trainer does.
    """
    from plm_tf.data import pipelines
    from plm_tf.gin_config import parse_gin, query_or_none
    from plm_tf.models.builders import build_pretraining_model
    from plm_tf.models.configs import bind_vocab_size

    parse_gin(gin_files, list(gin_params), finalize=False)
    model = build_pretraining_model()  # not built yet: only its objective is read before the vocab is known
    objective = getattr(model, "objective", "electra")
    kind = query_or_none("pretrain.tokenizer_kind") or pipelines.DEFAULT_TOKENIZER[objective]
    tokenizer = pipelines.load_tokenizer(kind, query_or_none("pretrain.vocab_path"))
    bind_vocab_size(tokenizer)
    model = build_pretraining_model()
    model.build()
    return model, tokenizer


def load_from_checkpoint(checkpoint, gin_files=None, gin_params=()):
    """Rebuilds the pretraining model from gin and restores its weights from a trainer checkpoint.

    Args:
        checkpoint: a checkpoint prefix or a model_dir (its latest checkpoint).
        gin_files: gin files describing the model (a path or a name under gin/); None uses
            `<model_dir>/operative_config.gin`.
        gin_params: extra gin bindings.

    Returns:
        (model, tokenizer) as `build_from_gin`, with the checkpoint's weights (optimizer and data state are
        ignored).

    Raises:
        ExportError: no gin file, no checkpoint, or a checkpoint that does not fit the configured model.
    """
    path = resolve_checkpoint(checkpoint)
    if gin_files is None:
        gin_files = default_gin_files(checkpoint)
        if not gin_files:
            raise ExportError(f"No --gin_file given and no {OPERATIVE_CONFIG} beside {checkpoint}.")
    model, tokenizer = build_from_gin(gin_files, gin_params)
    restore_model_weights(model, path)
    return model, tokenizer


def load_model_dir(checkpoint):
    """(model, tokenizer, recorded sentence_embedding) of a converted model folder (model.json), restored.

    The model is what model.json describes: a pretraining model, or a bare `TransformerEncoder`. An ELECTRA
    converted without its generator restores the discriminator and its head only (the generator is not served).

    Raises:
        ExportError: no vocabulary, or a checkpoint that does not fit model.json (naming the variables).
    """
    from plm_tf.convert.common import build_model, checkpoint_roots
    from plm_tf.convert.model_dir import open_model_dir, restore

    found = open_model_dir(checkpoint, ExportError)
    tokenizer = found.require_tokenizer(ExportError).load()
    model = build_model(found.spec)
    restore(found.prefix, checkpoint_roots(model, found.spec), ExportError, what="the model of model.json")
    return model, tokenizer, found.sentence_embedding


def restore_model_weights(model, path):
    """Restores every weight of `model` from the trainer checkpoint `path` (optimizer and data state ignored).

    The model's own object path (`model/discriminator/layer_0/...`) is used when the checkpoint has it for every
    variable. Checkpoints written before the encoder tracked its blocks as attributes hold the block weights
    only under the optimizer (`optimizer/_trainable_variables/<i>`, i = the index in
    `model.trainable_variables`); those are restored by that index after checking every shape.

    Raises:
        ExportError: the checkpoint does not fit the model.
    """
    try:
        tf.train.Checkpoint(model=model).restore(path).expect_partial().assert_existing_objects_matched()
        return
    except AssertionError:
        pass
    except (ValueError, tf.errors.OpError) as error:
        raise ExportError(f"{path} does not fit the configured model: {_first_line(error)}") from None
    saved = dict(tf.train.list_variables(path))
    listed = _optimizer_variable_keys(path)
    trainable = model.trainable_variables
    problems = []
    for i, variable in enumerate(trainable):
        shape = saved.get(listed.get(i))
        if shape is None or list(shape) != list(variable.shape):
            problems.append(f"{variable.path} {list(variable.shape)} (checkpoint: {shape})")
    if len(listed) != len(trainable):
        problems.append(f"the checkpoint's optimizer tracks {len(listed)} variables, the model has {len(trainable)}")
    if model.non_trainable_variables:
        problems.append(f"{len(model.non_trainable_variables)} non-trainable variables have no optimizer entry")
    if problems:
        raise ExportError(f"{path} does not fit the configured model: " + "; ".join(problems[:5]))
    shadow = tf.__internal__.tracking.AutoTrackable()
    shadow._trainable_variables = list(trainable)
    tf.train.Checkpoint(model=model, optimizer=shadow).restore(path).expect_partial()


def _optimizer_variable_keys(path):
    """{i: checkpoint key of the value of optimizer/_trainable_variables/i} from the checkpoint's object graph."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(path).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))

    def child(node_id, name):
        for ref in graph.nodes[node_id].children:
            if ref.local_name == name:
                return ref.node_id
        return None

    optimizer = child(0, "optimizer")
    listed = child(optimizer, "_trainable_variables") if optimizer is not None else None
    if listed is None:
        return {}
    keys = {}
    for ref in graph.nodes[listed].children:
        attributes = graph.nodes[ref.node_id].attributes
        if ref.local_name.isdigit() and attributes:
            keys[int(ref.local_name)] = attributes[0].checkpoint_key
    return keys


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
