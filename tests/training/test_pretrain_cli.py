"""The pretraining CLI and trainer end to end on tiny configs: every objective runs, progress and files
appear, a SIGKILLed run resumes to the same weights, SIGTERM saves, bad configuration gives one message.

Each run is a subprocess (`python -m plm_tf.train`), as a user runs it, bounded by a timeout.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import tensorflow as tf

from testing_utils import REPO_ROOT

TIMEOUT = 300


def train_command(model_dir, gin_file="testing/electra_tiny.gin", *params, strategy=None):
    command = [sys.executable, "-m", "plm_tf.train", f"--gin_file={gin_file}", f"--model_dir={model_dir}"]
    command += [f"--gin_param={p}" for p in params]
    if strategy:
        command.append(f"--strategy={strategy}")
    return command


def subprocess_env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def run_train(model_dir, gin_file="testing/electra_tiny.gin", *params, expect_ok=True):
    result = subprocess.run(
        train_command(model_dir, gin_file, *params), cwd=REPO_ROOT, env=subprocess_env(),
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    if expect_ok and result.returncode != 0:
        raise AssertionError(f"train failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def checkpoint_weights(prefix):
    """{variable key: value} of the model weights stored in a checkpoint (optimizer state excluded)."""
    reader = tf.train.load_checkpoint(prefix)
    return {
        key: reader.get_tensor(key)
        for key in reader.get_variable_to_shape_map()
        if key.startswith("model/") and "OPTIMIZER_SLOT" not in key
    }


class TrainCliTest(tf.test.TestCase):
    def test_electra_end_to_end(self):
        model_dir = self.get_temp_dir() + "/electra"
        result = run_train(model_dir, "testing/electra_tiny.gin", "pretrain.export = True")
        lines = result.stdout.splitlines()
        progress = [line for line in lines if line.startswith("step ")]
        self.assertLen(progress, 3)  # log_every = 2, 6 steps
        for field in ("mlm", "discriminator", "discriminator_auc", "sampled_equals_original", "tok/s", "ETA"):
            self.assertIn(field, progress[-1])
        self.assertIn("Done.", result.stdout)
        summary = json.load(open(os.path.join(model_dir, "summary.json")))
        self.assertEqual(summary["step"], 6)
        self.assertTrue(np.isfinite(summary["final_losses"]["loss"]))
        self.assertEqual(os.path.basename(summary["latest_checkpoint"]), "ckpt-6")
        self.assertTrue(os.path.exists(os.path.join(model_dir, "operative_config.gin")))
        self.assertTrue(tf.io.gfile.glob(os.path.join(model_dir, "train", "events.out.tfevents.*")))
        # The run ends by exporting the discriminator as a raw-text SavedModel.
        self.assertEqual(summary["export_dir"], os.path.join(os.path.abspath(model_dir), "export"))
        self.assertTrue(os.path.exists(os.path.join(summary["export_dir"], "saved_model.pb")))
        self.assertIn("SavedModel:", result.stdout)
        # A second call with the same model_dir has nothing left to do and keeps the weights.
        again = run_train(model_dir)
        self.assertIn("nothing to do", again.stdout)

    def test_every_objective_trains(self):
        for family in ("roberta", "albert", "bert"):
            with self.subTest(family=family):
                model_dir = self.get_temp_dir() + "/" + family
                run_train(model_dir, f"testing/{family}_tiny.gin", "TRAIN_STEPS = 4")
                summary = json.load(open(os.path.join(model_dir, "summary.json")))
                self.assertEqual(summary["step"], 4)
                self.assertTrue(np.isfinite(summary["final_losses"]["mlm"]))
                if family != "roberta":
                    self.assertIn("sentence_accuracy", summary["final_metrics"])

    def test_bad_configuration_gives_one_message(self):
        model_dir = self.get_temp_dir() + "/bad"
        cases = {
            "encoder_config.hiden_size = 3": "doesn't have a parameter named 'hiden_size'",
            "pretrain.corpus_paths = ['/nonexistent/corpus.txt']": "/nonexistent/corpus.txt",
            "encoder_config.vocab_size = 123": "The vocabulary has",
            "pretrain.train_steps = 'many'": "pretrain.train_steps must be a positive integer, got 'many'",
        }
        for binding, message in cases.items():
            with self.subTest(binding=binding):
                result = run_train(model_dir, "testing/electra_tiny.gin", binding, expect_ok=False)
                self.assertEqual(result.returncode, 2, result.stderr[-2000:])
                errors = [line for line in result.stderr.splitlines() if line.startswith("plm_tf.train: error")]
                self.assertLen(errors, 1)
                self.assertIn(message, errors[0])
                self.assertNotIn("Traceback", result.stderr)
                self.assertNotIn("In call to configurable", result.stderr)
        missing = run_train(model_dir, "no_such_file.gin", expect_ok=False)
        self.assertEqual(missing.returncode, 2)
        self.assertIn("gin file 'no_such_file.gin' not found", missing.stderr)
        bad_strategy = subprocess.run(
            train_command(model_dir, "testing/electra_tiny.gin", strategy="tpuu"), cwd=REPO_ROOT,
            env=subprocess_env(), capture_output=True, text=True, timeout=TIMEOUT,
        )
        self.assertNotEqual(bad_strategy.returncode, 0)
        self.assertIn("--strategy", bad_strategy.stderr)
        self.assertNotIn("Traceback", bad_strategy.stderr)


class ResumeTest(tf.test.TestCase):
    """N steps straight == k steps, SIGKILL, resume to N (same weights); SIGTERM saves before exiting."""

    PARAMS = ("TRAIN_STEPS = 400", "pretrain.checkpoint_every = 4", "pretrain.log_every = 4")

    def test_sigkill_then_resume_matches_straight_run(self):
        straight = self.get_temp_dir() + "/straight"
        run_train(straight, "testing/electra_tiny.gin", *self.PARAMS, "pretrain.train_steps = 40")
        killed = self.get_temp_dir() + "/killed"
        process = subprocess.Popen(
            train_command(killed, "testing/electra_tiny.gin", *self.PARAMS), cwd=REPO_ROOT, env=subprocess_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.time() + TIMEOUT
            while tf.train.latest_checkpoint(killed) is None and time.time() < deadline:
                time.sleep(0.2)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=60)
        self.assertEqual(process.returncode, -signal.SIGKILL)
        last_checkpoint = tf.train.latest_checkpoint(killed)
        killed_at = int(last_checkpoint.rsplit("-", 1)[1])
        self.assertLess(killed_at, 40)  # killed mid-run (a tiny step takes milliseconds: leave a wide margin)
        resumed = run_train(killed, "testing/electra_tiny.gin", *self.PARAMS, "pretrain.train_steps = 40")
        self.assertIn(f"Resuming from {last_checkpoint} at step {killed_at}.", resumed.stdout)
        expected = checkpoint_weights(os.path.join(straight, "ckpt-40"))
        actual = checkpoint_weights(os.path.join(killed, "ckpt-40"))
        self.assertEqual(sorted(expected), sorted(actual))
        for key in expected:
            self.assertAllClose(actual[key], expected[key], atol=1e-6, msg=key)

    def test_sigterm_saves_the_current_step_and_exits_cleanly(self):
        model_dir = self.get_temp_dir() + "/preempted"
        process = subprocess.Popen(
            train_command(model_dir, "testing/electra_tiny.gin", *self.PARAMS), cwd=REPO_ROOT,
            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        deadline = time.time() + TIMEOUT
        while tf.train.latest_checkpoint(model_dir) is None and time.time() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=120)
        self.assertEqual(process.returncode, 0, stdout[-2000:])
        self.assertIn("Preempted (SIGTERM)", stdout)
        summary = json.load(open(os.path.join(model_dir, "summary.json")))
        self.assertTrue(summary["preempted"])
        self.assertEqual(
            os.path.basename(tf.train.latest_checkpoint(model_dir)), f"ckpt-{summary['step']}"
        )
        self.assertLess(summary["step"], 400)


if __name__ == "__main__":
    tf.test.main()
