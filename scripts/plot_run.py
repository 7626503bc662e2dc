"""Draws a pretraining run's learning curves: `python scripts/plot_run.py MODEL_DIR [--output=PATH]`.

Writes MODEL_DIR/curves.png (or PATH) from the run's TensorBoard event files (train/ and eval/); see
`plm_tf.evaluation.curves`. A directory without scalars ends with one line on stderr and exit status 2.
"""
import argparse

from plm_tf.cli import exit_with_error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="a trainer model_dir (with train/ and eval/ TensorBoard logs)")
    parser.add_argument("--output", default=None, help="PNG path (default MODEL_DIR/curves.png)")
    args = parser.parse_args(argv)
    from plm_tf.evaluation.curves import CurvesError, plot_run

    try:
        print(plot_run(args.model_dir, args.output))
    except CurvesError as error:
        exit_with_error("plot_run", error)


if __name__ == "__main__":
    main()
