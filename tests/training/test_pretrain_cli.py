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
from unittest import mock

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


def file_snapshot(directory):
    """{relative path: (size, mtime_ns, bytes)} of every file under `directory`."""
    snapshot = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            stat = os.stat(path)
            snapshot[os.path.relpath(path, directory)] = (stat.st_size, stat.st_mtime_ns, open(path, "rb").read())
    return snapshot


class TrainCliTest(tf.test.TestCase):
    def test_electra_end_to_end(self):
        model_dir = self.get_temp_dir() + "/electra"
        bad_lines = os.path.join(self.get_temp_dir(), "not_utf8.txt")
        with open(bad_lines, "wb") as f:
            f.write(b"\xff\xfe not UTF-8\nA fine line of text.\n\xc3\x28 neither\n")
        corpus = [str(REPO_ROOT / "plm_tf" / "assets" / "corpus.txt.gz"), bad_lines]
        params = ("pretrain.export = True", f"pretrain.corpus_paths = {corpus!r}")
        result = run_train(model_dir, "testing/electra_tiny.gin", *params)
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
        # The skipped undecodable lines are counted where the user sees them.
        self.assertIn(f"Skipping 2 corpus line(s) that are not UTF-8 (first: {bad_lines}:1).", result.stdout)
        self.assertEqual(summary["corpus_invalid_utf8_lines"], 2)
        # The export is readable by other users (the umask's mode, not mkdtemp's 0700).
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(os.stat(summary["export_dir"]).st_mode & 0o777, 0o777 & ~umask)
        # A second call with the same model_dir has nothing left to do: it says so and changes no file
        # (summary, export, TensorBoard events, operative config, checkpoints).
        before = file_snapshot(model_dir)
        again = run_train(model_dir, "testing/electra_tiny.gin", *params)
        self.assertIn("nothing to do, no file changed", again.stdout)
        self.assertEqual(file_snapshot(model_dir), before)

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
        a_file = os.path.join(self.get_temp_dir(), "a_file")
        open(a_file, "w").close()
        not_a_dir = run_train(os.path.join(a_file, "run"), "testing/electra_tiny.gin", expect_ok=False)
        self.assertEqual(not_a_dir.returncode, 2, not_a_dir.stderr[-2000:])
        self.assertIn(f"cannot be created: {a_file} is a file, not a directory", not_a_dir.stderr)
        self.assertNotIn("Traceback", not_a_dir.stderr)
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
    """N steps straight == k steps, SIGKILL, damaged latest checkpoint, resume to N (bit-identical weights,
    dropout on); SIGTERM at start-up or in training exits cleanly."""

    PARAMS = ("TRAIN_STEPS = 400", "pretrain.checkpoint_every = 4", "pretrain.log_every = 4")
    DROPOUT = ("encoder_config.dropout_rate = 0.1", "encoder_config.attention_dropout_rate = 0.1")

    def test_sigkill_damaged_latest_then_resume_matches_straight_run(self):
        target = "pretrain.train_steps = 100"
        straight = self.get_temp_dir() + "/straight"
        run_train(straight, "testing/electra_tiny.gin", *self.PARAMS, *self.DROPOUT, target)
        killed = self.get_temp_dir() + "/killed"
        process = subprocess.Popen(
            train_command(killed, "testing/electra_tiny.gin", *self.PARAMS, *self.DROPOUT), cwd=REPO_ROOT,
            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.time() + TIMEOUT
            while len(tf.io.gfile.glob(os.path.join(killed, "ckpt-*.index"))) < 2 and time.time() < deadline:
                time.sleep(0.1)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=60)
        self.assertEqual(process.returncode, -signal.SIGKILL)
        # The two newest checkpoints with an index (a kill mid-save may have left a newer one complete).
        steps = sorted(int(path.rsplit("-", 1)[1][: -len(".index")])
                       for path in tf.io.gfile.glob(os.path.join(killed, "ckpt-*.index")))
        previous, killed_at = steps[-2:]
        self.assertLess(killed_at, 100)  # killed mid-run (a tiny step takes milliseconds: leave a wide margin)
        # Damage the newest checkpoint: the resumed run falls back to the previous one and says why.
        data = os.path.join(killed, f"ckpt-{killed_at}.data-00000-of-00001")
        content = open(data, "rb").read()
        open(data, "wb").write(content[: len(content) // 2])
        resumed = run_train(killed, "testing/electra_tiny.gin", *self.PARAMS, *self.DROPOUT, target)
        resume_lines = [line for line in resumed.stdout.splitlines() if line.startswith("Resuming")]
        self.assertLen(resume_lines, 1)
        self.assertStartsWith(resume_lines[0],
                              f"Resuming from {os.path.join(killed, f'ckpt-{previous}')} at step {previous}. (skipped ")
        self.assertIn(f"ckpt-{killed_at}: its data file is truncated)", resume_lines[0])
        expected = checkpoint_weights(os.path.join(straight, "ckpt-100"))
        actual = checkpoint_weights(os.path.join(killed, "ckpt-100"))
        self.assertEqual(sorted(expected), sorted(actual))
        for key in expected:
            self.assertAllEqual(actual[key], expected[key], msg=key)  # bit-identical, dropout masks included

    def test_sigterm_at_start_up_then_in_training_exits_cleanly(self):
        model_dir = self.get_temp_dir() + "/preempted"
        # 1. SIGTERM while TensorFlow starts, the model is built, the pipeline made: nothing written, status 0.
        process = subprocess.Popen(
            train_command(model_dir, "testing/electra_tiny.gin", *self.PARAMS), cwd=REPO_ROOT,
            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.assertTrue(process.stdout.readline().startswith("plm_tf.train:"))  # printed before pretrain()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=TIMEOUT)
        self.assertEqual(process.returncode, 0, stderr[-2000:])
        self.assertIn("Preempted (SIGTERM) during start-up, before step 1; nothing to save", stdout)
        self.assertFalse(tf.io.gfile.glob(os.path.join(model_dir, "ckpt-*")))
        self.assertFalse(os.path.exists(os.path.join(model_dir, "summary.json")))
        # 2. The rerun trains; SIGTERM after its first checkpoint saves the current step and exits cleanly.
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


class ExportPreemptionTest(tf.test.TestCase):
    def test_sigterm_during_the_final_export_abandons_it_cleanly(self):
        """The export is redone by the rerun; the signal does not wait for a 1.5-minute SavedModel write."""
        from plm_tf.training import checkpointing, trainer

        model_dir = self.get_temp_dir()
        written = []

        def slow_export(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # interrupted between these bytecodes
                time.sleep(0.01)
            written.append(True)

        lines = []
        with checkpointing.install_preemption_handler() as handler:
            with mock.patch("plm_tf.export.exporter.export_saved_model", slow_export):
                model = mock.Mock(encoder_config={"max_position_embeddings": 64, "position_offset": 0})
                summary = trainer._export(handler, {"step": 6}, model, None, os.path.join(model_dir, "export"), 32,
                                          model_dir, lines.append)
        self.assertFalse(written)
        self.assertTrue(summary["preempted"])
        self.assertEqual(lines, [f"Exporting the serving SavedModel to {model_dir}/export ...",
                                 f"Preempted (SIGTERM) during the export: the checkpoint is complete, "
                                 f"{model_dir}/export was not written; rerun the same command to export."])
        self.assertFalse(os.path.exists(os.path.join(model_dir, "summary.json")))


class CheckWritableTest(tf.test.TestCase):
    def test_unwritable_model_dirs_are_named(self):
        from plm_tf.training.trainer import TrainingError, check_writable

        root = self.get_temp_dir()
        check_writable(os.path.join(root, "new", "run"))  # creatable: fine, nothing created yet
        self.assertFalse(os.path.exists(os.path.join(root, "new")))
        a_file = os.path.join(root, "file")
        open(a_file, "w").close()
        with self.assertRaisesRegex(TrainingError, f"{a_file} is a file, not a directory"):
            check_writable(a_file)
        # A read-only file system answers access(W_OK) with EROFS, whatever the user (root included).
        with mock.patch("os.access", return_value=False):
            with self.assertRaisesRegex(TrainingError, f"model_dir {root}/run is not writable: {root} is read-only"):
                check_writable(os.path.join(root, "run"))


if __name__ == "__main__":
    tf.test.main()
