"""`python -m plm_tf.export --checkpoint=RUN_DIR_OR_CKPT --output=DIR [--gin_file=...] [--max_seq_length=128]`.

Rebuilds the pretraining model from gin (by default `<model_dir>/operative_config.gin`, written by
`python -m plm_tf.train`), restores the checkpoint (a `ckpt-N` prefix, or a model_dir for its latest), and
writes the serving SavedModel described in `plm_tf.export.serving`. Errors (no checkpoint, no gin file, a
checkpoint that does not fit the configuration, a bad option) end with one line on stderr and exit status 2.
"""
import sys

from absl import app, flags, logging

from plm_tf.cli import exit_with_error

flags.DEFINE_string("checkpoint", None, "checkpoint prefix (.../ckpt-6) or a trainer model_dir (its latest).")
flags.DEFINE_string("output", None, "SavedModel directory to write.")
flags.DEFINE_multi_string("gin_file", None, "gin file(s) of the model; default <model_dir>/operative_config.gin.")
flags.DEFINE_multi_string("gin_param", [], "extra gin bindings.")
flags.DEFINE_integer("max_seq_length", 128, "T: text signatures truncate and pad to this many tokens.")
flags.DEFINE_enum("sentence_embedding", "auto", ["auto", "pooled", "mean", "cls"],
                  "sentence_embedding of `encode` (auto: pooler for BERT/ALBERT, masked mean otherwise).")
flags.DEFINE_boolean("overwrite", False, "replace an existing --output directory.")
flags.mark_flag_as_required("checkpoint")
flags.mark_flag_as_required("output")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        sys.exit(f"plm_tf.export: unexpected arguments {argv[1:]}.")
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf  # noqa: F401

    from plm_tf.export.exporter import export_saved_model, load_from_checkpoint
    from plm_tf.gin_config import ConfigError

    try:
        model, tokenizer = load_from_checkpoint(FLAGS.checkpoint, FLAGS.gin_file, FLAGS.gin_param)
        path = export_saved_model(model, tokenizer, FLAGS.output, max_seq_length=FLAGS.max_seq_length,
                                  sentence_embedding=FLAGS.sentence_embedding, overwrite=FLAGS.overwrite)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        exit_with_error("plm_tf.export", error)
    print(f"plm_tf.export: wrote {path}")
    print(f"  inspect: saved_model_cli show --all --dir {path}")
    print(f"  try:     python -m plm_tf.predict --saved_model={path} \"some text\"")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
