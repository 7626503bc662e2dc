"""`python -m plm_tf.finetune --gin_file=finetune/electra.gin --task_dir=DIR --init_checkpoint=RUN [--model_dir=...]`.

Fine-tunes and evaluates an encoder on a GLUE-style task (see `plm_tf.finetuning`):

    --task_dir         train/dev[/test].tsv[.gz] folder, or tfds:glue/<config> (prepared locally, see
                       --gin_param=finetune.tfds_data_dir=...)
    --init_checkpoint  a checkpoint prefix (RUN/ckpt-600) or a `python -m plm_tf.train` model_dir (its latest
                       checkpoint); the run's operative_config.gin gives the encoder and tokenizer. Without it
                       the encoder starts from random weights and its encoder_config.* must come from a gin
                       file (e.g. --gin_file=electra_demo.gin).
    --export_dir       also export the best classifier as a raw-text SavedModel.

Prints a progress line every `finetune.log_every` updates and, after each epoch, the dev scores beside the
majority-class baseline's (with a warning when the kept epoch only predicts that class). Writes
model_dir/results.json (dev metrics per epoch, the best epoch, test metrics when the test split has labels,
the majority-class baseline), model_dir/test_predictions.tsv (when there is a test split), model_dir/best/
(weights of the best epoch) and a model card, model_dir/README.md. The classes are the train labels, which dev
and test must share, unless `--gin_param="finetune.label_names = [...]"` declares them. Data and configuration
errors end with one line on stderr and exit status 2.
"""
import json
import os
import sys

from absl import app, flags, logging

from plm_tf.cli import exit_with_error

flags.DEFINE_multi_string("gin_file", None, "gin file(s): a path or a name under gin/ (e.g. finetune/electra.gin).")
flags.DEFINE_multi_string("gin_param", [], "extra gin bindings, e.g. --gin_param='finetune.num_epochs=1'.")
flags.DEFINE_string("task_dir", None, "GLUE-style TSV folder or tfds:glue/<config>.")
flags.DEFINE_string("init_checkpoint", None, "pretraining checkpoint prefix or model_dir; absent = random init.")
flags.DEFINE_string("model_dir", None, "results and best weights (default runs/finetune/<task>).")
flags.DEFINE_string("export_dir", None, "export the fine-tuned classifier here as a raw-text SavedModel.")
flags.mark_flag_as_required("task_dir")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        sys.exit(f"plm_tf.finetune: unexpected arguments {argv[1:]}; configuration goes in --gin_file/--gin_param.")
    logging.set_verbosity(logging.WARNING)
    if FLAGS.task_dir.startswith("tfds:"):
        task_name = FLAGS.task_dir[len("tfds:"):].replace("/", "_")
    else:
        task_name = os.path.basename(os.path.normpath(FLAGS.task_dir))
    model_dir = FLAGS.model_dir or os.path.join("runs", "finetune", task_name)
    gin_files = FLAGS.gin_file or ["finetune/electra.gin"]
    # Imported here so that `--help` and flag errors do not pay for TensorFlow's start-up.
    from plm_tf.finetuning.trainer import run_finetuning

    try:
        print(f"plm_tf.finetune: {', '.join(gin_files)} on {FLAGS.task_dir} → {model_dir}", flush=True)
        results = run_finetuning(gin_files, FLAGS.gin_param, FLAGS.task_dir, model_dir, FLAGS.init_checkpoint,
                                 print_fn=lambda line: print(line, flush=True))
        if FLAGS.export_dir:
            from plm_tf.finetuning.export import export_from_model_dir

            export_from_model_dir(model_dir, FLAGS.export_dir)
            print(f"Exported the best classifier to {FLAGS.export_dir} (signature 'serving_default': text[, text_b]).")
    except ValueError as error:  # TaskDataError, ConfigError, FinetuningError, CheckpointError, TokenizerError
        exit_with_error("plm_tf.finetune", error)
    print("\nDone. Best epoch", results["best"]["epoch"], json.dumps(results["best"]["dev"]))
    if "test" in results:
        print("Test", json.dumps(results["test"]))
    print(f"  results: {os.path.join(model_dir, 'results.json')}")
    if "test_predictions" in results:
        print(f"  test predictions: {results['test_predictions']}")
    print(f"  model card: {os.path.join(model_dir, 'README.md')}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
