"""`python -m plm_tf.evaluate --checkpoint=DIR [--corpus=PATH ...]`: held-out evaluation of a pretraining
checkpoint, one JSON object on stdout.

DIR is a `python -m plm_tf.train` model_dir (its latest checkpoint), one of its `ckpt-N` prefixes, or a
`python -m plm_tf.convert` output folder (`plm_tf.evaluation.loading`). The evaluation is the trainer's
(`plm_tf.evaluation.evaluator`: fixed seeded masks and samples, dropout off), so its numbers equal the run's
`eval/` summaries for the same weights and settings. Without --corpus a trainer run is evaluated on what it
evaluated on itself: the held-out documents of its training corpus (`plm_tf.data.heldout`), which it never
trained on, or its `pretrain.eval_corpus_paths`; a converted checkpoint on the embedded corpus's held-out
documents.

Output: {"checkpoint", "layout", "objective", "step", "corpus", "documents", "seq_len", "batch_size",
"eval_batches", "metrics": {name: value}} (NaN written as null). Bad input (missing checkpoint, unknown
configuration, corpus too small) ends with one line on stderr and exit status 2.
"""
import json
import sys

from absl import app, flags, logging

from plm_tf.cli import exit_with_error
from plm_tf.evaluation.checkpoint import evaluate_checkpoint

flags.DEFINE_string("checkpoint", None, "trainer model_dir or checkpoint prefix, or a converted-model folder.")
flags.DEFINE_multi_string("corpus", None, "evaluation corpus files/folders/globs (default: a trainer run's own "
                          "evaluation data; for a converted checkpoint the embedded corpus's held-out documents).")
flags.DEFINE_enum("documents", None, ["all", "heldout"], "which documents of the corpus to evaluate on "
                  "(default: heldout without --corpus, all with it).")
flags.DEFINE_integer("seq_len", None, "tokens per example (default: the run's pretrain.seq_len).")
flags.DEFINE_integer("batch_size", None, "examples per batch (default: the run's pretrain.batch_size).")
flags.DEFINE_integer("eval_batches", None, "batches to evaluate (default: the run's pretrain.eval_batches or 8).")
flags.DEFINE_multi_string("gin_param", [], "extra gin bindings, e.g. --gin_param='pretraining_dataset.mask_prob=0.25'.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        exit_with_error("plm_tf.evaluate", ValueError(f"unexpected arguments {argv[1:]}"))
    if not FLAGS.checkpoint:
        exit_with_error("plm_tf.evaluate", ValueError("--checkpoint is required"))
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf

    try:
        result = evaluate_checkpoint(FLAGS.checkpoint, FLAGS.corpus, FLAGS.documents, FLAGS.seq_len,
                                     FLAGS.batch_size, FLAGS.eval_batches, FLAGS.gin_param)
    except (ValueError, FileNotFoundError, tf.errors.OpError) as error:
        exit_with_error("plm_tf.evaluate", error)
    json.dump(result, sys.stdout, indent=2)
    print()


def run():
    app.run(main)


if __name__ == "__main__":
    run()
