"""`python -m plm_tf.train --gin_file=gin/electra_base.gin [--gin_param=...] [--model_dir=...]`.

With no flags it pretrains the small ELECTRA demo (gin/electra_demo.gin) on the embedded corpus. A restart
with the same --model_dir resumes from the latest checkpoint. Configuration errors (a missing gin file, an
unknown binding, a bad strategy name, a missing corpus, a vocab that does not fit the model or checkpoint)
end with one line on stderr and exit status 2, and so does a model_dir whose checkpoints are all damaged. SIGTERM
at any moment (start-up, training, saving, the final export) ends with a consistent model_dir and status 0;
rerun the same command to continue. Under multi_worker_mirrored, a worker whose peer died stops with one line
"peer lost, restart all workers" and status 1.
"""
import os
import sys

from absl import app, flags, logging

from plm_tf.cli import exit_with_error
from plm_tf.gin_config import ConfigError, parse_gin
from plm_tf.training.preemption import install_preemption_handler

DEFAULT_GIN_FILE = "electra_demo.gin"

flags.DEFINE_multi_string("gin_file", None, f"gin file(s): a path or a name under gin/ (default {DEFAULT_GIN_FILE}).")
flags.DEFINE_multi_string("gin_param", [], "extra gin bindings, e.g. --gin_param='pretrain.train_steps=100'.")
flags.DEFINE_string("model_dir", None, "checkpoints, logs and summaries (default runs/<gin file name>).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker_mirrored", "tpu"],
                  "tf.distribute strategy (multi_worker_mirrored reads TF_CONFIG).")
flags.DEFINE_string("tpu_address", None, "TPU name or grpc:// address for --strategy=tpu.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        sys.exit(f"plm_tf.train: unexpected arguments {argv[1:]}; configuration goes in --gin_file/--gin_param.")
    # Before TensorFlow's import: a SIGTERM from here on is a clean stop (the trainer's handler inherits it).
    start_up = install_preemption_handler()
    logging.set_verbosity(logging.WARNING)
    gin_files = FLAGS.gin_file or [DEFAULT_GIN_FILE]
    model_dir = FLAGS.model_dir or os.path.join("runs", os.path.splitext(os.path.basename(gin_files[-1]))[0])
    # Imported here so that `--help` and flag errors do not pay for TensorFlow's start-up.
    from plm_tf.training.distribution import PeerLostError
    from plm_tf.training.trainer import pretrain

    try:
        parse_gin(gin_files, FLAGS.gin_param)
        print(f"plm_tf.train: {', '.join(gin_files)} → {model_dir} (strategy {FLAGS.strategy})", flush=True)
        summary = pretrain(model_dir, strategy=FLAGS.strategy, tpu_address=FLAGS.tpu_address,
                           print_fn=lambda line: print(line, flush=True))
    except (ConfigError, ValueError, FileNotFoundError) as error:
        exit_with_error("plm_tf.train", error)
    except PeerLostError as error:
        # Not a configuration error: a scheduler should restart the whole job (status 1, not 2).
        exit_with_error("plm_tf.train", error, status=1)
    finally:
        start_up.uninstall()
    print("\nDone.")
    for key in ("step", "final_losses", "final_metrics", "tokens_per_second", "wall_time", "latest_checkpoint",
                "weights_fingerprint"):
        print(f"  {key}: {summary.get(key)}")
    print(f"  TensorBoard: tensorboard --logdir {os.path.join(model_dir, 'train')}")
    if "export_dir" in summary:
        print(f"  SavedModel: {summary['export_dir']}  (try: python -m plm_tf.predict "
              f"--saved_model={summary['export_dir']} \"The quick brown fox.\")")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
