"""Evaluation inside a pretraining run, the `plm_tf.evaluate` CLI on its checkpoint, and the curves picture."""
import contextlib
import io
import json
import math
import os
import subprocess
import sys

import tensorflow as tf

from plm_tf.data import assets
from plm_tf.evaluation import curves
from plm_tf.gin_config import parse_gin
from plm_tf.training.trainer import pretrain
from testing_utils import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import plot_run  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_module(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


class TrainingEvaluationTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_dir = os.path.join(tf.compat.v1.test.get_temp_dir(), "electra_eval_run")
        # Not the default corpus: `plm_tf.evaluate` must find the run's own held-out documents by itself.
        parse_gin(["testing/electra_tiny.gin"], ["pretrain.eval_every = 3", "pretrain.eval_batches = 2",
                                                 "pretrain.corpus_paths = @embedded_corpus()",
                                                 "embedded_corpus.name = 'email'"])
        cls.lines = []
        cls.summary = pretrain(cls.model_dir, print_fn=cls.lines.append)

    def test_evaluations_reach_progress_tensorboard_and_summary(self):
        eval_lines = [line for line in self.lines if line.startswith("eval step")]
        self.assertEqual([line.split(" |")[0] for line in eval_lines],
                         ["eval step 0/6", "eval step 3/6", "eval step 6/6"])
        self.assertIn("discriminator_auc", eval_lines[-1])
        self.assertIn("effective_rank", eval_lines[-1])
        scalars = curves.read_scalars(os.path.join(self.model_dir, "eval"))
        for name in ("mlm_loss", "discriminator_auc", "mean_cosine", "effective_rank", "replaced_fraction"):
            steps, values = scalars[f"eval/{name}"]
            self.assertEqual(steps.tolist(), [0, 3, 6])
            self.assertAlmostEqual(values[-1], self.summary["eval"][name], places=5)  # float32 in the event
        self.assertEqual(self.summary["eval"]["step"], 6)

    def test_curves_png_written(self):
        path = self.summary["curves"]
        self.assertEqual(path, os.path.join(self.model_dir, curves.CURVES_FILE))
        with open(path, "rb") as handle:
            data = handle.read()
        self.assertEqual(data[:8], PNG_SIGNATURE)
        self.assertGreater(len(data), 5000)
        other = os.path.join(self.get_temp_dir(), "again.png")
        with contextlib.redirect_stdout(io.StringIO()):
            plot_run.main([self.model_dir, f"--output={other}"])
        self.assertGreater(os.path.getsize(other), 5000)

    def test_plot_run_without_scalars_exits_2(self):
        with self.assertRaises(SystemExit) as raised, contextlib.redirect_stderr(io.StringIO()) as err:
            plot_run.main([self.get_temp_dir()])
        self.assertEqual(raised.exception.code, 2)
        self.assertIn("no TensorBoard scalars", err.getvalue())

    def test_evaluate_cli_reproduces_the_runs_last_evaluation(self):
        result = run_module("plm_tf.evaluate", f"--checkpoint={self.model_dir}")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        output = json.loads(result.stdout)
        self.assertEqual((output["step"], output["objective"], output["documents"]), (6, "electra", "heldout"))
        self.assertEqual(output["corpus"], [assets.embedded_corpus_path("email")])
        expected = {name: (None if isinstance(value, float) and math.isnan(value) else value)
                    for name, value in self.summary["eval"].items() if name != "step"}
        self.assertEqual(output["metrics"], expected)  # bit-identical to the trainer's evaluation

    def test_evaluate_cli_bad_input(self):
        result = run_module("plm_tf.evaluate", f"--checkpoint={self.model_dir}/missing")
        self.assertEqual(result.returncode, 2)
        self.assertRegex(result.stderr.strip().splitlines()[-1], r"^plm_tf\.evaluate: error: .*missing")
