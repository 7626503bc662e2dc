"""Learning curves of a run as one PNG: training and evaluation losses and key metrics against updates.

Reads the TensorBoard event files the trainer writes (`model_dir/train`: training-batch scalars such as `mlm`,
`discriminator`, `mlm_accuracy`, `discriminator_auc`; `model_dir/eval`: `eval/<metric>`, see
`plm_tf.evaluation.evaluator`) and draws, for each panel whose series exist, training (dropout on, the
batches being learnt) and held-out evaluation (dropout off) side by side:

    MLM loss | discriminator or sentence loss | MLM accuracy | discriminator AUC and sampled-equals-original |
    isotropy probe (mean cosine, effective rank)

Uses matplotlib's Agg backend (no display needed). `scripts/plot_run.py DIR` calls `plot_run`.
"""
import os

import numpy as np
import tensorflow as tf

CURVES_FILE = "curves.png"

# (panel title, y label, [(run, tag, label)]); a panel is drawn when any of its series has points.
PANELS = (
    ("Masked LM loss", "nats", [("train", "mlm", "train"), ("eval", "eval/mlm_loss", "eval")]),
    ("Discriminator loss", "BCE", [("train", "discriminator", "train"),
                                   ("eval", "eval/discriminator_loss", "eval")]),
    ("Sentence (NSP/SOP) loss", "CE", [("train", "sentence", "train"), ("eval", "eval/sentence_loss", "eval")]),
    ("Masked LM accuracy", "", [("train", "mlm_accuracy", "train"), ("eval", "eval/mlm_accuracy", "eval")]),
    ("Sentence accuracy", "", [("train", "sentence_accuracy", "train"),
                               ("eval", "eval/sentence_accuracy", "eval")]),
    ("Replaced-token detection", "", [("train", "discriminator_auc", "AUC train"),
                                      ("eval", "eval/discriminator_auc", "AUC eval"),
                                      ("eval", "eval/sampled_equals_original", "sample = original (eval)")]),
    ("Isotropy probe (eval)", "mean cosine", [("eval", "eval/mean_cosine", "mean cosine")]),
    ("Effective rank (eval)", "exp entropy of σ", [("eval", "eval/effective_rank", "effective rank")]),
)


class CurvesError(ValueError):
    """A directory without TensorBoard scalars to plot."""


def read_scalars(log_dir):
    """{tag: (steps int [N], values float [N])} from every event file in `log_dir` (later writes of the same
    step, e.g. after a resume, replace earlier ones). Empty when the folder does not exist."""
    if not tf.io.gfile.isdir(log_dir):
        return {}
    points = {}
    for name in sorted(tf.io.gfile.listdir(log_dir)):
        if "tfevents" not in name:
            continue
        for record in tf.data.TFRecordDataset(os.path.join(log_dir, name)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.HasField("tensor"):
                    number = float(tf.make_ndarray(value.tensor))
                elif value.HasField("simple_value"):
                    number = float(value.simple_value)
                else:
                    continue
                points.setdefault(value.tag, {})[int(event.step)] = number
    return {tag: (np.array(sorted(by_step)), np.array([by_step[s] for s in sorted(by_step)]))
            for tag, by_step in points.items()}


def plot_run(model_dir, output_path=None):
    """Writes the curves of the run in `model_dir` to `output_path` (default `model_dir/curves.png`).

    Returns:
        the PNG path.
    Raises:
        CurvesError: `model_dir` holds no training or evaluation scalars.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {run: read_scalars(os.path.join(model_dir, run)) for run in ("train", "eval")}
    panels = [(title, ylabel, [(runs[run][tag], label) for run, tag, label in series if tag in runs[run]])
              for title, ylabel, series in PANELS]
    panels = [panel for panel in panels if panel[2]]
    if not panels:
        raise CurvesError(f"{model_dir} holds no TensorBoard scalars in train/ or eval/ to plot.")
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for axis, (title, ylabel, series) in zip(axes.ravel(), panels):
        for (steps, values), label in series:
            axis.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=label)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("updates", fontsize=8)
        axis.set_ylabel(ylabel, fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    for axis in axes.ravel()[len(panels):]:
        axis.set_visible(False)
    figure.suptitle(os.path.basename(os.path.normpath(model_dir)), fontsize=11)
    figure.tight_layout()
    output_path = output_path or os.path.join(model_dir, CURVES_FILE)
    figure.savefig(output_path, dpi=80)
    plt.close(figure)
    return output_path
