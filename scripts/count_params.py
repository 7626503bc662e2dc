"""Prints the parameter count of each component of a gin-configured pretraining model.

    python scripts/count_params.py --gin_file=gin/electra_small.gin

One `name: count` line per component (see plm_tf.models.parameter_counts.component_counts); the numbers for
every published size equal REFERENCE §1 (tests/models/test_parameter_counts.py checks them). A model whose
`encoder_config.vocab_size` is None (gin/electra_demo.gin) is sized from its configured or default vocabulary,
as `python -m plm_tf.train` sizes it. Errors (a fragment or fine-tuning recipe instead of a model file, a
mistyped binding) end with one line on stderr and exit status 2.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from plm_tf.cli import exit_with_error, quiet_startup  # noqa: E402

quiet_startup()  # before TensorFlow is imported: keep its start-up lines out of the terminal
from plm_tf.models.parameter_counts import configured_counts  # noqa: E402

flags.DEFINE_multi_string("gin_file", [], "gin file(s) describing the model (path or name under gin/).")
flags.DEFINE_multi_string("gin_param", [], "extra gin bindings, e.g. encoder_config.num_layers=2.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if not FLAGS.gin_file:
        exit_with_error("count_params.py", "give --gin_file (e.g. --gin_file=gin/electra_small.gin).")
    try:
        counts = configured_counts(FLAGS.gin_file, FLAGS.gin_param)
    except ValueError as error:  # ConfigError, VocabSizeError, TokenizerError
        exit_with_error("count_params.py", error)
    for name, count in counts.items():
        print(f"{name}: {count}")


if __name__ == "__main__":
    app.run(main)
