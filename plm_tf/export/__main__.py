"""`python -m plm_tf.export --checkpoint=MODEL_DIR_OR_CKPT --output=DIR [--gin_file=...] [--max_seq_length=128]`.

--checkpoint is any plm_tf model directory (`plm_tf.convert.model_dir`), and needs no other flag:
- a converted folder (model.json): its model — pretraining heads or a bare encoder — and its tokenizer;
  `encode` uses the pooling model.json records (a sentence-transformers model's own);
- a fine-tuning run (task.json): the best epoch's classifier (`plm_tf.finetuning.export`: serving_default
  classifies raw text; encode / encode_pairs; the task's seq_len is the padded length);
- a `python -m plm_tf.train` model_dir or ckpt-N prefix: the model rebuilt from its operative_config.gin (or
  --gin_file).
It writes the serving SavedModel described in `plm_tf.export.serving`. Errors (no checkpoint, no gin file, a
checkpoint that does not fit the configuration, a bad option) end with one line on stderr and exit status 2.
"""
import os
import shutil
import sys
import time

from absl import app, flags, logging

from plm_tf.cli import exit_with_error

flags.DEFINE_string("checkpoint", None, "a plm_tf model directory: converted (model.json), fine-tuned (task.json), "
                    "or a trainer model_dir / checkpoint prefix (.../ckpt-6).")
flags.DEFINE_string("output", None, "SavedModel directory to write.")
flags.DEFINE_multi_string("gin_file", None, "gin file(s) of a pretraining run's model; default "
                          "<model_dir>/operative_config.gin (converted and fine-tuned folders describe themselves).")
flags.DEFINE_multi_string("gin_param", [], "extra gin bindings.")
flags.DEFINE_integer("max_seq_length", None, "T: text signatures truncate and pad to this many tokens (default 128, "
                     "or the model's positions if fewer; a fine-tuned classifier keeps its task's seq_len).")
flags.DEFINE_enum("sentence_embedding", "auto", ["auto", "pooled", "mean", "cls"],
                  "sentence_embedding of `encode` (auto: what a converted folder records, else the pooler for "
                  "BERT/ALBERT and bare encoders with one, masked mean otherwise).")
flags.DEFINE_boolean("overwrite", False, "replace an existing --output directory.")
flags.mark_flag_as_required("checkpoint")
flags.mark_flag_as_required("output")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        sys.exit(f"plm_tf.export: unexpected arguments {argv[1:]}.")
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf  # noqa: F401

    from plm_tf.convert.model_dir import MANIFEST, TASK_FILE
    from plm_tf.export.exporter import ExportError, export_saved_model, load_from_checkpoint, load_model_dir
    from plm_tf.gin_config import ConfigError

    def has(name):
        return os.path.isfile(os.path.join(FLAGS.checkpoint, name)) or (
            not os.path.isdir(FLAGS.checkpoint) and os.path.isfile(os.path.join(os.path.dirname(FLAGS.checkpoint),
                                                                               name)))

    print(f"plm_tf.export: exporting {FLAGS.checkpoint} to {FLAGS.output} ...", flush=True)
    started = time.perf_counter()
    try:
        if has(TASK_FILE):
            path = _export_finetuned()
        else:
            mode = FLAGS.sentence_embedding
            if FLAGS.gin_file is None and has(MANIFEST):
                if FLAGS.gin_param:
                    raise ExportError(f"--gin_param does not apply to a converted folder: its {MANIFEST} describes "
                                      f"the model.")
                model, tokenizer, recorded = load_model_dir(FLAGS.checkpoint)
                mode = recorded if mode == "auto" else mode
            else:
                model, tokenizer = load_from_checkpoint(FLAGS.checkpoint, FLAGS.gin_file, FLAGS.gin_param)
            path = export_saved_model(model, tokenizer, FLAGS.output, max_seq_length=_max_seq_length(model),
                                      sentence_embedding=mode, overwrite=FLAGS.overwrite)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        exit_with_error("plm_tf.export", error)
    print(f"plm_tf.export: wrote {path} in {time.perf_counter() - started:.0f} s")
    print(f"  inspect: saved_model_cli show --all --dir {path}")
    print(f"  try:     python -m plm_tf.predict --saved_model={path} \"some text\"")


def _max_seq_length(model):
    """--max_seq_length, else 128 or the model's position table when that is shorter."""
    if FLAGS.max_seq_length is not None:
        return FLAGS.max_seq_length
    from plm_tf.export.serving import serving_parts

    encoder = serving_parts(model)[1]
    return min(128, encoder.max_position_embeddings - encoder.position_offset)


def _export_finetuned():
    """The fine-tuned classifier of a `python -m plm_tf.finetune` model_dir; returns the SavedModel path."""
    from plm_tf.export.exporter import ExportError
    from plm_tf.finetuning.export import export_from_model_dir

    stray = [name for name, given in (("gin_file", FLAGS.gin_file), ("gin_param", FLAGS.gin_param),
                                      ("max_seq_length", FLAGS.max_seq_length is not None),
                                      ("sentence_embedding", FLAGS.sentence_embedding != "auto")) if given]
    if stray:
        raise ExportError(f"--{stray[0]} does not apply to a fine-tuned classifier (its task.json fixes the model, "
                          f"seq_len and sentence representation).")
    output = os.path.abspath(FLAGS.output)
    if os.path.exists(output):
        if not FLAGS.overwrite:
            raise ExportError(f"{output} exists; pass --overwrite to replace it.")
        shutil.rmtree(output)
    model_dir = FLAGS.checkpoint if os.path.isdir(FLAGS.checkpoint) else os.path.dirname(FLAGS.checkpoint)
    return export_from_model_dir(model_dir, output)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
