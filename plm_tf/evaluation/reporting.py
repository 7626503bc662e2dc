"""Evaluation results to the progress output and to TensorBoard (run `eval`, tags `eval/<metric>`)."""
import tensorflow as tf

# The metrics shown on the progress line, in this order (all of them go to TensorBoard and summary.json).
PROGRESS_METRICS = (
    "loss", "mlm_loss", "mlm_perplexity", "mlm_accuracy", "sentence_accuracy", "discriminator_loss",
    "discriminator_auc", "discriminator_precision", "discriminator_recall", "replaced_fraction",
    "sampled_equals_original", "mean_cosine", "effective_rank",
)


def format_eval_line(step, total_steps, metrics):
    """`eval step S/N | name value | ...` with the `PROGRESS_METRICS` present in `metrics`."""
    shown = " ".join(f"{name} {metrics[name]:.4g}" for name in PROGRESS_METRICS if name in metrics)
    return f"eval step {step}/{total_steps} | {shown}"


class EvalReporter:
    """Prints one line per evaluation and writes every metric as the TensorBoard scalar `eval/<name>`.

    Args:
        summary_dir: TensorBoard log directory (e.g. `model_dir/eval`), or None for no summaries.
        total_steps: the run's last step (shown on the line).
        print_fn: where lines go.
    """

    def __init__(self, summary_dir, total_steps, print_fn=print):
        self.total_steps = total_steps
        self.print_fn = print_fn
        self.writer = tf.summary.create_file_writer(summary_dir) if summary_dir else None

    def report(self, step, metrics):
        self.print_fn(format_eval_line(step, self.total_steps, metrics))
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for name, value in metrics.items():
                    tf.summary.scalar(f"eval/{name}", value)
            self.writer.flush()
