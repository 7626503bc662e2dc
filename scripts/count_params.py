"""Prints the parameter count of each component of a gin-configured pretraining model.

    python scripts/count_params.py --gin_file=gin/electra_small.gin

One `name: count` line per component (see plm_tf.models.parameter_counts.component_counts); the numbers for
every published size equal REFERENCE §1 (tests/models/test_parameter_counts.py checks them).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from plm_tf.gin_config import ConfigError, parse_gin  # noqa: E402
from plm_tf.models.builders import build_pretraining_model  # noqa: E402
from plm_tf.models.parameter_counts import component_counts  # noqa: E402

flags.DEFINE_multi_string("gin_file", [], "gin file(s) describing the model (path or name under gin/).")
flags.DEFINE_multi_string("gin_param", [], "extra gin bindings, e.g. encoder_config.num_layers=2.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if not FLAGS.gin_file:
        sys.exit("count_params.py: give --gin_file (e.g. --gin_file=gin/electra_small.gin).")
    try:
        parse_gin(FLAGS.gin_file, FLAGS.gin_param)
        model = build_pretraining_model()
    except (ConfigError, ValueError) as error:
        sys.exit(f"count_params.py: {error}")
    model.build()
    for name, count in component_counts(model).items():
        print(f"{name}: {count}")


if __name__ == "__main__":
    app.run(main)
