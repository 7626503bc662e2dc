"""Progress lines and TensorBoard summaries for the train loop."""
import time

import tensorflow as tf


def format_duration(seconds):
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


class ProgressReporter:
    """Prints `step | losses | metrics | tokens/s | ETA` lines and writes the same values to TensorBoard.

    Args:
        summary_dir: TensorBoard log directory (None: no summaries, e.g. on non-chief workers).
        total_steps: the run's last step, for the ETA.
        tokens_per_update: sequence length × global batch.
        print_fn: where lines go (print by default).
    """

    def __init__(self, summary_dir, total_steps, tokens_per_update, print_fn=print):
        self.total_steps = total_steps
        self.tokens_per_update = tokens_per_update
        self.print_fn = print_fn
        self.writer = tf.summary.create_file_writer(summary_dir) if summary_dir else None
        self._last_time = None
        self._last_step = None

    def start(self, step):
        self._last_time, self._last_step = time.perf_counter(), step

    def report(self, step, losses, metrics, learning_rate):
        now = time.perf_counter()
        updates = step - self._last_step
        elapsed = max(now - self._last_time, 1e-9)
        tokens_per_second = updates * self.tokens_per_update / elapsed
        eta = (self.total_steps - step) * elapsed / max(updates, 1)
        self._last_time, self._last_step = now, step
        loss_text = " ".join(f"{name} {value:.4f}" for name, value in losses.items())
        metric_text = " ".join(f"{name} {value:.3f}" for name, value in metrics.items())
        self.print_fn(
            f"step {step}/{self.total_steps} | {loss_text} | {metric_text} | lr {learning_rate:.2e} | "
            f"{tokens_per_second:,.0f} tok/s | ETA {format_duration(eta)}"
        )
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for name, value in {**losses, **metrics}.items():
                    tf.summary.scalar(name, value)
                tf.summary.scalar("learning_rate", learning_rate)
                tf.summary.scalar("tokens_per_second", tokens_per_second)
            self.writer.flush()
        return tokens_per_second
