"""CheckpointManager: exact resume, keep-last-K, crash atomicity, mismatch errors, SIGTERM preemption."""
import os
import pathlib
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

from plm_tf.training import checkpointing
from plm_tf.training import optimizers

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 120


def _model(vocab_size=20, extra_layer=False):
    inputs = keras.Input((3,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, 8, name="word_embeddings")(inputs)
    x = keras.layers.Dense(8, name="dense")(x)
    x = keras.layers.LayerNormalization(name="layer_norm")(x)
    x = keras.layers.Dense(1, name="head")(x)
    if extra_layer:
        x = keras.layers.Dense(1, name="extra")(x)
    return keras.Model(inputs, x)


def _dataset(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 20, size=(64, 3)).astype(np.int32)
    targets = rng.normal(size=(64, 3, 1)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((ids, targets)).shuffle(64, seed=1).repeat().batch(4)


class _Run:
    """A model, a built optimizer with gradient accumulation, an iterator and an epoch variable."""

    def __init__(self, directory, **manager_kwargs):
        keras.utils.set_random_seed(0)
        self.model = _model()
        self.optimizer = optimizers.create_optimizer("adamw", learning_rate=0.01, gradient_accumulation_steps=2)
        self.optimizer.build(self.model.trainable_variables)
        self.iterator = iter(_dataset())
        self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
        self.manager = checkpointing.CheckpointManager(
            directory, self.model, self.optimizer, iterator=self.iterator, epoch=self.epoch, **manager_kwargs
        )
        self._step = tf.function(self._micro_step)

    def _micro_step(self, ids, targets):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.model(ids) - targets))
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))

    def train(self, micro_steps):
        for _ in range(micro_steps):
            self._step(*next(self.iterator))
            self.manager.step.assign_add(1)
            self.epoch.assign(self.manager.step // 10)

    def weights(self):
        return [v.numpy() for v in self.model.weights + self.optimizer.variables]


class CheckpointManagerTest(tf.test.TestCase):
    def test_fresh_directory_restores_step_zero(self):
        run = _Run(self.get_temp_dir() + "/fresh")
        self.assertEqual(run.manager.restore_latest(), 0)
        self.assertIsNone(run.manager.latest_checkpoint)

    def test_resume_matches_uninterrupted_run(self):
        """7 micro-steps straight vs 3, save, new process state, restore, 4 more: identical everything.

        3 is mid-accumulation (2 micro-steps per update), so the accumulators must round-trip too.
        """
        straight = _Run(self.get_temp_dir() + "/straight")
        straight.train(7)

        directory = self.get_temp_dir() + "/resumed"
        first = _Run(directory)
        first.train(3)
        first.manager.save()
        first.train(2)  # progress after the checkpoint is lost, as in a crash

        resumed = _Run(directory)
        self.assertEqual(resumed.manager.restore_latest(), 3)
        self.assertEqual(int(resumed.optimizer._iterations), 3)
        resumed.train(4)
        self.assertEqual(int(resumed.epoch), 0)
        for a, b in zip(straight.weights(), resumed.weights()):
            self.assertAllEqual(a, b)
        self.assertAllEqual(next(straight.iterator)[0], next(resumed.iterator)[0])

    def test_keeps_last_k(self):
        directory = self.get_temp_dir() + "/keep"
        run = _Run(directory, max_to_keep=3)
        for _ in range(6):
            run.manager.step.assign_add(1)
            run.manager.save()
        self.assertEqual([os.path.basename(p) for p in run.manager.checkpoints], ["ckpt-4", "ckpt-5", "ckpt-6"])
        self.assertEqual(sorted(f for f in os.listdir(directory) if f.endswith(".index")),
                         ["ckpt-4.index", "ckpt-5.index", "ckpt-6.index"])
        self.assertEqual(os.path.basename(run.manager.latest_checkpoint), "ckpt-6")

    def test_save_interval(self):
        run = _Run(self.get_temp_dir() + "/interval", save_interval_steps=5)
        saved = []
        for _ in range(12):
            run.manager.step.assign_add(1)
            if run.manager.save(force=False):
                saved.append(int(run.manager.step))
        self.assertEqual(saved, [1, 6, 11])
        self.assertIsNotNone(run.manager.save(force=True))

    def test_leftover_partial_files_do_not_break_restore(self):
        """What a crash mid-save leaves: temp shards and a truncated next checkpoint, pointer unchanged."""
        directory = self.get_temp_dir() + "/partial"
        run = _Run(directory)
        run.train(2)
        run.manager.save()
        expected = run.weights()
        os.makedirs(os.path.join(directory, "ckpt-3_temp"))
        with open(os.path.join(directory, "ckpt-3_temp", "part-00000-of-00001.data-00000-of-00001"), "wb") as f:
            f.write(b"\x00" * 100)
        with open(os.path.join(directory, "ckpt-3.index"), "wb") as f:
            f.write(b"truncated")
        with open(os.path.join(directory, "ckpt-3.data-00000-of-00001"), "wb") as f:
            f.write(b"\x01" * 10)
        resumed = _Run(directory)
        self.assertEqual(resumed.manager.restore_latest(), 2)
        for a, b in zip(expected, resumed.weights()):
            self.assertAllEqual(a, b)

    def test_sigkill_during_saves_leaves_a_complete_latest_checkpoint(self):
        """A real crash: SIGKILL a process that keeps saving a 24 MB variable equal to its step."""
        directory = self.get_temp_dir() + "/killed"
        code = f"""
        import sys, tensorflow as tf
        big = tf.Variable(tf.zeros([6_000_000]))
        step = tf.Variable(0, dtype=tf.int64)
        manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(big=big, step=step), {directory!r}, max_to_keep=2, step_counter=step)
        while True:
            step.assign_add(1)
            big.assign(tf.fill([6_000_000], tf.cast(step, tf.float32)))
            manager.save(checkpoint_number=step)
            print(int(step), flush=True)
        """
        process = _spawn(code)
        try:
            _wait_for_line(process, lambda line: int(line) >= 3)
            time.sleep(0.15)  # land somewhere inside a later save
            process.kill()
            process.wait(timeout=TIMEOUT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
        big = tf.Variable(tf.zeros([6_000_000]))
        step = tf.Variable(0, dtype=tf.int64)
        latest = tf.train.latest_checkpoint(directory)
        tf.train.Checkpoint(big=big, step=step).restore(latest).assert_consumed()
        self.assertGreaterEqual(int(step), 3)
        self.assertAllEqual(big.numpy()[[0, -1]], [float(int(step))] * 2)

    def test_shape_mismatch_names_the_variable(self):
        directory = self.get_temp_dir() + "/vocab"
        run = _Run(directory)
        run.manager.save()
        model = _model(vocab_size=30)
        optimizer = optimizers.create_optimizer("adamw")
        optimizer.build(model.trainable_variables)
        manager = checkpointing.CheckpointManager(directory, model, optimizer)
        with self.assertRaisesRegex(
            checkpointing.CheckpointMismatchError,
            r"variable 'word_embeddings/embeddings' has shape \(20, 8\) in the checkpoint but \(30, 8\)",
        ):
            manager.restore_latest()

    def test_missing_and_extra_variables_are_named(self):
        directory = self.get_temp_dir() + "/layers"
        keras.utils.set_random_seed(0)
        model = _model(extra_layer=True)
        optimizer = optimizers.create_optimizer("adamw")
        optimizer.build(model.trainable_variables)
        checkpointing.CheckpointManager(directory, model, optimizer).save()

        def restore_into(extra_layer, directory):
            model = _model(extra_layer=extra_layer)
            optimizer = optimizers.create_optimizer("adamw")
            optimizer.build(model.trainable_variables)
            checkpointing.CheckpointManager(directory, model, optimizer).restore_latest()

        with self.assertRaisesRegex(
            checkpointing.CheckpointMismatchError, r"holds \S*extra_?(kernel|bias)\S*, which the model and optimizer do not have"
        ):
            restore_into(False, directory)
        smaller = self.get_temp_dir() + "/smaller"
        model = _model()
        optimizer = optimizers.create_optimizer("adamw")
        optimizer.build(model.trainable_variables)
        checkpointing.CheckpointManager(smaller, model, optimizer).save()
        with self.assertRaisesRegex(
            checkpointing.CheckpointMismatchError, r"has no value for .*extra/(kernel|bias), .*extra/"
        ):
            restore_into(True, smaller)

    def test_unbuilt_optimizer_is_rejected(self):
        directory = self.get_temp_dir() + "/unbuilt"
        _Run(directory).manager.save()
        manager = checkpointing.CheckpointManager(directory, _model(), optimizers.create_optimizer("adamw"))
        with self.assertRaisesRegex(ValueError, "Build the optimizer"):
            manager.restore_latest()

    def test_only_chief_writes_under_multi_worker(self):
        def fake_strategy(task_type, task_id, cluster):
            resolver = mock.Mock(task_type=task_type, task_id=task_id)
            resolver.cluster_spec.return_value.as_dict.return_value = cluster
            return mock.Mock(cluster_resolver=resolver)

        workers = {"worker": ["a:1", "b:2"]}
        self.assertTrue(checkpointing.is_chief(None))
        self.assertTrue(checkpointing.is_chief(fake_strategy("worker", 0, workers)))
        self.assertFalse(checkpointing.is_chief(fake_strategy("worker", 1, workers)))
        self.assertTrue(checkpointing.is_chief(fake_strategy("chief", 0, {"chief": ["c:0"], **workers})))
        self.assertFalse(checkpointing.is_chief(fake_strategy("worker", 0, {"chief": ["c:0"], **workers})))

        directory = self.get_temp_dir() + "/multi"
        run = _Run(directory, strategy=fake_strategy("worker", 1, workers))
        self.assertIsNone(run.manager.save())
        self.assertFalse(os.path.exists(directory) and os.listdir(directory))
        chief = _Run(directory, strategy=fake_strategy("worker", 0, workers))
        chief.manager.step.assign(4)
        chief.manager.save()
        self.assertEqual(run.manager.restore_latest(), 4)  # non-chief workers read the chief's directory


def _damage(directory, step, how):
    """Damages checkpoint ckpt-<step> of `directory` the way the issue's cases did."""
    prefix = os.path.join(directory, f"ckpt-{step}")
    data = prefix + ".data-00000-of-00001"
    if how == "index deleted":
        os.remove(prefix + ".index")
    elif how == "data truncated":
        content = open(data, "rb").read()
        open(data, "wb").write(content[: len(content) // 2])
    elif how == "checksum":
        content = bytearray(open(data, "rb").read())
        content[len(content) // 2] ^= 0xFF  # one flipped byte inside a tensor
        open(data, "wb").write(bytes(content))
    elif how == "state text garbage":
        open(os.path.join(directory, "checkpoint"), "w").write("this is not a checkpoint state\n")
    elif how == "state binary garbage":
        open(os.path.join(directory, "checkpoint"), "wb").write(bytes(range(128, 256)))
    else:
        raise ValueError(how)


class DamagedCheckpointTest(tf.test.TestCase):
    """A damaged checkpoint never restarts a run from step 0: fall back to the newest one that restores."""

    CAUSES = {
        "index deleted": "ckpt-6: files are missing",
        "data truncated": "ckpt-6: its data file is truncated",
        "checksum": "ckpt-6: checksum failure",
        "state text garbage": "is not a checkpoint state",
        "state binary garbage": "is not a text file",
    }

    def _saved_run(self, directory, steps=(2, 4, 6), **kwargs):
        """A run saved at `steps`; returns {step: weights at that step}."""
        run = _Run(directory, **kwargs)
        weights = {}
        for step in steps:
            run.train(step - int(run.manager.step))
            run.manager.save()
            weights[step] = run.weights()
        return weights

    def test_each_damage_falls_back_to_the_newest_complete_checkpoint(self):
        original = os.path.join(self.get_temp_dir(), "original")
        weights = self._saved_run(original)
        for how, cause in self.CAUSES.items():
            with self.subTest(damage=how):
                directory = os.path.join(self.get_temp_dir(), how.replace(" ", "_"))
                shutil.copytree(original, directory)
                _damage(directory, 6, how)
                resumed = _Run(directory)
                expected_step = 6 if how.startswith("state") else 4  # the checkpoint files are intact
                self.assertEqual(resumed.manager.restore_latest(), expected_step)
                self.assertIn(cause, resumed.manager.restore_notice)
                for a, b in zip(weights[expected_step], resumed.weights()):
                    self.assertAllEqual(a, b)
                # The state file now names the restored checkpoint, so TensorFlow's readers agree.
                self.assertEqual(tf.train.latest_checkpoint(directory), os.path.join(directory, f"ckpt-{expected_step}"))

    def test_no_checkpoint_newer_than_the_resumed_one_is_rotated_away(self):
        directory = self.get_temp_dir() + "/rotate"
        self._saved_run(directory, steps=(2, 4, 6), max_to_keep=2)  # keeps ckpt-4 and ckpt-6
        _damage(directory, 6, "data truncated")
        resumed = _Run(directory, max_to_keep=2)
        self.assertEqual(resumed.manager.restore_latest(), 4)
        resumed.train(1)
        resumed.manager.save()  # ckpt-5
        files = sorted(f for f in os.listdir(directory) if f.startswith("ckpt-"))
        self.assertIn("ckpt-4.index", files)             # the one resumed from: max_to_keep=2 keeps it
        self.assertIn("ckpt-6.index", files)             # the damaged newer one stays for inspection
        self.assertIn("ckpt-5.index", files)
        self.assertEqual(os.path.basename(resumed.manager.latest_checkpoint), "ckpt-5")

    def test_nothing_restores_names_the_files_and_causes(self):
        directory = self.get_temp_dir() + "/all_damaged"
        self._saved_run(directory, steps=(2, 4))
        _damage(directory, 4, "checksum")
        _damage(directory, 2, "index deleted")
        with self.assertRaisesRegex(
            checkpointing.CheckpointDamagedError,
            r"holds an earlier run but no checkpoint of it restores \(ckpt-4: checksum failure.*; "
            r"ckpt-2: files are missing"):
            _Run(directory).manager.restore_latest()
        garbage_only = self.get_temp_dir() + "/state_only"
        os.makedirs(garbage_only)
        _damage(garbage_only, None, "state text garbage")  # a sign of an earlier run, but nothing to restore
        with self.assertRaisesRegex(checkpointing.CheckpointDamagedError, "is not a checkpoint state"):
            _Run(garbage_only).manager.restore_latest()

    def test_stale_temp_folder_is_removed_at_start(self):
        directory = self.get_temp_dir() + "/stale"
        self._saved_run(directory, steps=(2,))
        os.makedirs(os.path.join(directory, "ckpt-3_temp"))
        open(os.path.join(directory, "ckpt-3_temp", "part-00000-of-00001.index"), "wb").write(b"x")
        resumed = _Run(directory)
        self.assertEqual(resumed.manager.restore_latest(), 2)
        self.assertIsNone(resumed.manager.restore_notice)
        self.assertFalse(os.path.exists(os.path.join(directory, "ckpt-3_temp")))

    def test_readers_name_the_damage(self):
        """Export and fine-tuning resolve checkpoints here: one error naming the cause, or the fallback."""
        directory = self.get_temp_dir() + "/read"
        self._saved_run(directory, steps=(2, 4))
        _damage(directory, 4, "checksum")
        lines = []
        self.assertEqual(checkpointing.resolve_checkpoint(directory, print_fn=lines.append),
                         os.path.join(directory, "ckpt-2"))
        self.assertLen(lines, 1)
        self.assertIn("skipped ckpt-4: checksum failure", lines[0])
        with self.assertRaisesRegex(ResolveCheckpointTest._Error, r"ckpt-4 is damaged: checksum failure"):
            checkpointing.resolve_checkpoint(os.path.join(directory, "ckpt-4"), ResolveCheckpointTest._Error)
        with self.assertRaisesRegex(ValueError, "is damaged: its data file is truncated"):
            with checkpointing.reading_checkpoint("x"):
                raise IndexError("Read less bytes than requested")

    def test_export_and_fine_tuning_name_the_damage(self):
        """`python -m plm_tf.export` / fine-tuning: a checksum failure is "damaged", not "does not fit"."""
        from plm_tf.export import exporter
        from plm_tf.export.serving import ExportError
        from plm_tf.finetuning import export as finetuning_export
        from plm_tf.finetuning import model as finetuning_model

        directory = self.get_temp_dir() + "/pretrained"
        self._saved_run(directory, steps=(2,))
        _damage(directory, 2, "checksum")
        prefix = os.path.join(directory, "ckpt-2")
        with self.assertRaisesRegex(ExportError, r"ckpt-2 is damaged: checksum failure"):
            exporter.load_from_checkpoint(prefix, gin_files=["testing/electra_tiny.gin"])
        with self.assertRaisesRegex(ExportError, r"no checkpoint that can be read \(ckpt-2: checksum failure"):
            exporter.resolve_checkpoint(directory)
        with self.assertRaisesRegex(finetuning_model.CheckpointError, r"ckpt-2 is damaged: checksum failure"):
            finetuning_model.restore_encoder(prefix)
        # A fine-tuning model_dir whose kept best checkpoint is damaged (its data truncated).
        finetuned = self.get_temp_dir() + "/finetuned"
        os.makedirs(finetuned)
        open(os.path.join(finetuned, "task.json"), "w").write("{}")
        self._saved_run(os.path.join(finetuned, "best"), steps=(3,))
        _damage(os.path.join(finetuned, "best"), 3, "data truncated")
        with self.assertRaisesRegex(finetuning_model.CheckpointError,
                                    r"best holds no checkpoint that can be read \(ckpt-3: its data file is truncated"):
            finetuning_export.load_finetuned(finetuned)


class ResolveCheckpointTest(tf.test.TestCase):
    """`resolve_checkpoint`, shared by export, fine-tuning and conversion."""

    class _Error(ValueError):
        pass

    def test_prefix_latest_lone_index_and_errors(self):
        root = self.get_temp_dir()
        variable = tf.Variable(1.0)
        run_dir = os.path.join(root, "run")
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=variable), run_dir, max_to_keep=3)
        for step in (5, 10):
            manager.save(checkpoint_number=step)
        resolve = checkpointing.resolve_checkpoint
        self.assertEqual(resolve(run_dir), os.path.join(run_dir, "ckpt-10"))        # latest of a model_dir
        self.assertEqual(resolve(os.path.join(run_dir, "ckpt-5")), os.path.join(run_dir, "ckpt-5"))
        lone = os.path.join(root, "released")                                       # no state file, one index
        tf.train.Checkpoint(v=variable).write(os.path.join(lone, "model.ckpt"))
        self.assertEqual(resolve(lone), os.path.join(lone, "model.ckpt"))
        tf.train.Checkpoint(v=variable).write(os.path.join(lone, "other.ckpt"))
        with self.assertRaisesRegex(self._Error, "several checkpoints .*model.ckpt, other.ckpt"):
            resolve(lone, self._Error)
        empty = os.path.join(root, "empty")
        os.makedirs(empty)
        with self.assertRaisesRegex(self._Error, "holds no checkpoint"):
            resolve(empty, self._Error)
        with self.assertRaisesRegex(self._Error, "neither a checkpoint prefix"):
            resolve(os.path.join(run_dir, "ckpt-99"), self._Error)


class PreemptionTest(tf.test.TestCase):
    def test_signal_before_install_is_inherited_and_interrupting_raises(self):
        """train.py's start-up handler passes a pending SIGTERM on; `interrupting()` abandons an export."""
        with checkpointing.install_preemption_handler(signals=(signal.SIGUSR1,)) as start_up:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.05)
            with checkpointing.install_preemption_handler(signals=(signal.SIGUSR1,)) as handler:
                self.assertTrue(handler.should_stop)
                with self.assertRaises(checkpointing.Preempted):
                    with handler.interrupting():
                        pass
            self.assertTrue(start_up.should_stop)
        with checkpointing.install_preemption_handler(signals=(signal.SIGUSR1,)) as handler:
            with self.assertRaises(checkpointing.Preempted):
                with handler.interrupting():
                    os.kill(os.getpid(), signal.SIGUSR1)
                    for _ in range(1000):  # the handler raises between these bytecodes
                        time.sleep(0.01)
            self.assertTrue(handler.should_stop)

    def test_handler_sets_flag_and_uninstall_restores_previous(self):
        previous = signal.getsignal(signal.SIGUSR1)
        with checkpointing.install_preemption_handler(signals=(signal.SIGUSR1,)) as handler:
            self.assertFalse(handler.should_stop)
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.05)
            self.assertTrue(handler.should_stop)
            self.assertEqual(handler.received_signal, "SIGUSR1")
        self.assertEqual(signal.getsignal(signal.SIGUSR1), previous)

    def test_sigterm_saves_at_the_step_boundary_and_exits_cleanly(self):
        directory = self.get_temp_dir() + "/preempted"
        code = f"""
        import time
        import keras, tensorflow as tf
        from plm_tf.training import checkpointing, optimizers
        inputs = keras.Input((2,))
        model = keras.Model(inputs, keras.layers.Dense(1, name="dense")(inputs))
        optimizer = optimizers.create_optimizer("adamw", learning_rate=0.01)
        optimizer.build(model.trainable_variables)
        manager = checkpointing.CheckpointManager({directory!r}, model, optimizer)
        handler = checkpointing.install_preemption_handler()

        @tf.function
        def train_step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(tf.ones((4, 2))) - 3.0))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))

        while int(manager.step) < 100000:
            train_step()
            manager.step.assign_add(1)
            print("step", int(manager.step), flush=True)
            if handler.should_stop:
                manager.save(force=True)
                print("stopped at", int(manager.step), "after", handler.received_signal, flush=True)
                break
            time.sleep(0.02)
        """
        process = _spawn(code)
        try:
            seen = _wait_for_line(process, lambda line: line == "step 5")
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=TIMEOUT_SECONDS)
            lines = seen + out.strip().splitlines()
        finally:
            if process.poll() is None:
                process.kill()
        self.assertEqual(process.returncode, 0, msg=err[-2000:])
        last = lines[-1].split()
        self.assertEqual(last[:2] + last[3:], ["stopped", "at", "after", "SIGTERM"])
        stopped_at = int(last[2])
        self.assertGreaterEqual(stopped_at, 5)
        self.assertEqual(lines[-2], f"step {stopped_at}")  # the save happened at the step boundary

        inputs = keras.Input((2,))
        model = keras.Model(inputs, keras.layers.Dense(1, name="dense")(inputs))
        optimizer = optimizers.create_optimizer("adamw", learning_rate=0.01)
        optimizer.build(model.trainable_variables)
        manager = checkpointing.CheckpointManager(directory, model, optimizer)
        self.assertEqual(manager.restore_latest(), stopped_at)
        self.assertEqual(int(optimizer.iterations), stopped_at)


def _spawn(code):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    return subprocess.Popen(
        [sys.executable, "-u", "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(process, predicate):
    """Reads the child's stdout until `predicate(line)`; returns the lines read (the last one matching).

    Fails on exit or after TIMEOUT_SECONDS. Lines are read on a helper thread so a silent, hung child
    cannot block the test past the timeout.
    """
    seen = []
    lines = queue.Queue()

    def pump():
        for line in iter(process.stdout.readline, ""):
            lines.put(line.strip())
            if predicate(line.strip()):
                return
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            raise AssertionError("timed out waiting for the child") from None
        if line is None:
            raise AssertionError(f"child exited early: {process.stderr.read()[-2000:]}")
        seen.append(line)
        if predicate(line):
            return seen


if __name__ == "__main__":
    tf.test.main()
