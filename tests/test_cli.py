"""What every `python -m plm_tf.<command>` shares (plm_tf/cli.py, plm_tf/stderr_filter.py): TensorFlow's
start-up noise never reaches the terminal, real errors do; a pretraining run says when its export starts and
ends and leaves a model card."""
import io
import os
import subprocess
import sys

import tensorflow as tf

from plm_tf import stderr_filter
from testing_utils import REPO_ROOT

# The lines a CPU-only TensorFlow 2.21 process printed at start-up and on its first int64 graph (pids and
# times vary).
NOISE = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796192107.924000    4412 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796192107.924344    4412 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1796192109.388973    4412 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
E0000 00:00:1796192164.564212    4739 util.cc:131] oneDNN supports DT_INT64 only on platforms with AVX-512. Falling back to the default Eigen-based implementation if present.
"""
REAL_ERROR = "E0000 00:00:1796192164.000001    4739 op_kernel.cc:1857] OP_REQUIRES failed at example.cc:1 : a real error\n"
NOISE_MARKERS = ("absl::InitializeLog", "oneDNN", "cudart_stub", "cuInit", "I0000", "E0000")


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    env.update(extra)
    return env


class NoiseFilterTest(tf.test.TestCase):

    def _filtered(self, text):
        sink = io.BytesIO()
        stderr_filter.filter_stream(io.BytesIO(text.encode()), sink)
        return sink.getvalue().decode()

    def test_drops_the_start_up_lines_and_keeps_everything_else(self):
        kept = self._filtered(NOISE + "plain text\n" + REAL_ERROR + NOISE + "Traceback (most recent call last):\n")
        self.assertEqual(kept, "plain text\n" + REAL_ERROR + "Traceback (most recent call last):\n")

    def test_cuinit_failure_shows_when_a_cuda_driver_is_installed(self):
        cuinit = NOISE.splitlines(keepends=True)[3]
        self.assertEqual(self._filtered(cuinit), cuinit)


class QuietCommandTest(tf.test.TestCase):

    def test_c_level_errors_pass_and_level_zero_shows_everything(self):
        script = ("from plm_tf import cli; cli.quiet_startup(); import os, tensorflow as tf; tf.constant(1); "
                  f"os.write(2, {REAL_ERROR.encode()!r})")
        quiet = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, text=True,
                               timeout=120, check=True)
        self.assertEqual(quiet.stderr, REAL_ERROR)
        loud = subprocess.run([sys.executable, "-c", script], env=_env(TF_CPP_MIN_LOG_LEVEL="0"),
                              capture_output=True, text=True, timeout=120, check=True)
        self.assertIn("cudart_stub", loud.stderr)
        self.assertIn(REAL_ERROR, loud.stderr)

    def test_train_run_is_quiet_announces_its_export_and_writes_a_card(self):
        model_dir = os.path.join(self.get_temp_dir(), "run")
        result = subprocess.run(
            [sys.executable, "-m", "plm_tf.train", "--gin_file=testing/electra_tiny.gin", f"--model_dir={model_dir}",
             "--gin_param=TRAIN_STEPS = 2", "--gin_param=pretrain.export = True"],
            cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        for marker in NOISE_MARKERS:
            self.assertNotIn(marker, result.stderr)
        lines = result.stdout.splitlines()
        export_dir = os.path.join(model_dir, "export")
        start = lines.index(f"Exporting the serving SavedModel to {export_dir} ...")
        self.assertRegex(lines[start + 1], rf"^Exported {export_dir} in \d+m\d\ds\.$")
        self.assertLess(max(i for i, line in enumerate(lines) if line.startswith("step ")), start)
        card = open(os.path.join(model_dir, "README.md")).read()
        for fact in ("# ELECTRA pretraining run", "| hidden_size | 32 |", "| tokens | 8445 |", "| updates | 2 |",
                     "| discriminator_auc |",
                     "| corpus | embedded austen corpus (Jane Austen's novels, plm_tf/assets/corpus.txt.gz) |",
                     f"restore_encoder({model_dir!r})", f"tf.saved_model.load({export_dir!r})"):
            self.assertIn(fact, card)

        bad = subprocess.run(
            [sys.executable, "-m", "plm_tf.train", "--gin_file=testing/electra_tiny.gin", f"--model_dir={model_dir}2",
             "--gin_param=TRAIN_STEPS = 0"], cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=120)
        self.assertEqual(bad.returncode, 2)
        self.assertEqual(bad.stderr, "plm_tf.train: error: pretrain.train_steps must be a positive integer, got 0.\n")


if __name__ == "__main__":
    tf.test.main()
