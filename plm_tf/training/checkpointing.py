"""Checkpoints that lose nothing: model, optimizer, step, data position and any extra state, plus preemption.

`CheckpointManager` wraps `tf.train.Checkpoint` + `tf.train.CheckpointManager`:

* What is saved: the model, the optimizer (moments, iteration counter, loss scale, gradient accumulators),
  an int64 `step` variable, the input iterator (`iter(dataset)` or a distributed iterator: tf.data
  iterators are checkpointable, so a resumed run continues with the next batch) and any extra trackables
  (e.g. a `tf.Variable` holding the epoch or a seed).
* Keep the last `max_to_keep` checkpoints (default 5).
* Atomicity: TensorFlow writes a checkpoint's data and index files under a temporary name and renames them
  when complete, and `tf.train.CheckpointManager` rewrites its `checkpoint` state file (the "latest"
  pointer) only after that, itself via write-then-rename. A process killed mid-save therefore leaves the
  pointer at the previous complete checkpoint; leftover partial files are ignored by `restore_latest`.
* Mismatches: restoring a checkpoint written for a different configuration (vocab size, width, depth)
  raises one `CheckpointMismatchError` naming the variables, instead of TensorFlow's object-graph dump.
* Multi-worker (`MultiWorkerMirroredStrategy`): every worker must call `save` (it is collective); only the
  chief writes to `directory`, the others to a scratch directory that is deleted after each save
  (the pattern of the TensorFlow multi-worker tutorial). Every worker restores from `directory`.

`install_preemption_handler()` turns SIGTERM (what schedulers and preemptible VMs send before killing a
process) into a flag the train loop polls at step boundaries:

    handler = install_preemption_handler()
    while step < num_train_steps:
        run_steps(...)
        if handler.should_stop:
            manager.save(force=True)
            break
"""

import os
import re
import shutil
import signal
import threading

import tensorflow as tf

_SHAPE_MISMATCH = re.compile(
    r"incompatible tensor with shape (\(.*?\)) when attempting to restore variable with shape "
    r"(\(.*?\)) and name ([^\s]+?)(?::\d+)?\.?$",
    re.MULTILINE,
)


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the objects it is restored into (different shapes or variables)."""


def resolve_checkpoint(path, error=ValueError):
    """The checkpoint prefix (`DIR/ckpt-600`) that `path` names.

    Args:
        path: a checkpoint prefix (with a `<prefix>.index` beside it) or a directory: a trainer model_dir
            (its `checkpoint` state file gives the latest), or a folder holding exactly one `*.index` (a
            released TF1 checkpoint without a state file).
        error: the ValueError subclass raised, so each CLI reports the failure in its own terms.
    """
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        indexes = sorted(name[: -len(".index")] for name in tf.io.gfile.listdir(path) if name.endswith(".index"))
        if len(indexes) == 1:
            return os.path.join(path, indexes[0])
        if not indexes:
            raise error(f"{path} holds no checkpoint (no `checkpoint` state file and no *.index).")
        raise error(f"{path} holds several checkpoints ({', '.join(indexes)}) and no `checkpoint` state file; "
                    "pass one prefix.")
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise error(f"{path} is neither a checkpoint prefix (no {path}.index) nor a directory with checkpoints.")


def _is_chief(strategy):
    """True unless `strategy` is multi-worker and this task is not the chief (worker 0 without a chief)."""
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is None:
        return True
    cluster = resolver.cluster_spec().as_dict()
    if not cluster:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


class CheckpointManager:
    """Saves and restores the whole training state; see the module docstring.

    Args:
        directory: where checkpoints (`ckpt-<step>.*`) and the `checkpoint` state file live.
        model: the Keras model (built, i.e. with its variables created).
        optimizer: the optimizer, *built* (`optimizer.build(model.trainable_variables)` inside the
            strategy scope) so that its slots are restored, not silently left at zero.
        step: an int64 `tf.Variable` the train loop increments once per optimizer update; created (0) when
            None and available as `manager.step`.
        iterator: the input iterator to save and restore, or None.
        max_to_keep: number of most recent checkpoints kept.
        save_interval_steps: `save()` without `force` writes only when at least this many steps passed
            since the last checkpoint; None writes every time.
        strategy: the `tf.distribute.Strategy`; decides who writes under multi-worker training.
        **extra_trackables: more checkpointable objects, saved under their keyword.

    Example:
        >>> manager = CheckpointManager("/tmp/run", model, optimizer, iterator=it, epoch=epoch_var)
        >>> start = manager.restore_latest()   # 0 on a fresh run
        >>> manager.step.assign_add(1); manager.save()
    """

    def __init__(
        self,
        directory,
        model,
        optimizer,
        step=None,
        iterator=None,
        max_to_keep=5,
        save_interval_steps=None,
        strategy=None,
        **extra_trackables,
    ):
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1 or None, got {max_to_keep}.")
        self.directory = directory
        self.model = model
        self.optimizer = optimizer
        if step is None:
            step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.step = step
        self.iterator = iterator
        objects = {"model": model, "optimizer": optimizer, "step": step, **extra_trackables}
        if iterator is not None:
            objects["iterator"] = iterator
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.is_chief = _is_chief(strategy)
        if self.is_chief:
            self._write_directory = directory
        else:
            resolver = strategy.cluster_resolver
            self._write_directory = os.path.join(
                directory, f".scratch_{resolver.task_type}_{resolver.task_id}"
            )
        self._manager = tf.train.CheckpointManager(
            self.checkpoint,
            self._write_directory,
            max_to_keep=max_to_keep if self.is_chief else 1,
            step_counter=step,
            checkpoint_interval=save_interval_steps,
        )

    @property
    def latest_checkpoint(self):
        """Path prefix of the newest complete checkpoint in `directory`, or None."""
        return tf.train.latest_checkpoint(self.directory)

    @property
    def checkpoints(self):
        """Paths of the kept checkpoints, oldest first (of this task's write directory)."""
        return list(self._manager.checkpoints)

    def save(self, force=True):
        """Writes a checkpoint numbered by `step`; returns its path (None if skipped or not the chief).

        Args:
            force: write even if fewer than `save_interval_steps` steps passed since the last one.
        """
        path = self._manager.save(checkpoint_number=self.step, check_interval=not force)
        if not self.is_chief:
            shutil.rmtree(self._write_directory, ignore_errors=True)
            return None
        return path

    def restore_latest(self):
        """Restores the newest checkpoint in `directory` if any; returns the restored step (0 when fresh).

        Raises:
            ValueError: if the optimizer is not built yet.
            CheckpointMismatchError: if the checkpoint's variables do not fit the model/optimizer.
        """
        path = self.latest_checkpoint
        if path is None:
            return 0
        self.restore(path)
        return int(self.step.numpy())

    def restore(self, path):
        """Restores the checkpoint at `path` strictly (every object and every saved value must match)."""
        if not getattr(self.optimizer, "built", True):
            raise ValueError(
                "Build the optimizer before restoring (optimizer.build(model.trainable_variables) inside "
                "strategy.scope()); otherwise its state cannot be matched against the checkpoint."
            )
        try:
            status = self.checkpoint.restore(path)
            status.assert_consumed()
        except ValueError as error:
            match = _SHAPE_MISMATCH.search(str(error))
            if match is None:
                raise CheckpointMismatchError(f"Could not restore {path}: {error}") from error
            saved, current, name = match.groups()
            raise CheckpointMismatchError(
                f"Checkpoint {path} does not match the model: variable '{name}' has shape {saved} in the "
                f"checkpoint but {current} in the model. It was written with a different configuration "
                "(vocab_size, hidden size, ...); use its configuration or a new model directory."
            ) from None
        except AssertionError as error:
            raise CheckpointMismatchError(_describe_unmatched(path, str(error))) from None


def _describe_unmatched(path, message):
    """Turns `assert_consumed`'s object-graph dump into a list of variable names."""
    missing_in_checkpoint = re.findall(r"path=([^,\s]+)", message)
    missing_in_program = re.findall(r'full_name: "([^"]+)"', message)
    if missing_in_checkpoint:
        names = ", ".join(missing_in_checkpoint[:10])
        return (
            f"Checkpoint {path} does not match the model: it has no value for {names}"
            f"{' ...' if len(missing_in_checkpoint) > 10 else ''}. It was written with a different "
            "configuration (e.g. fewer layers); use its configuration or a new model directory."
        )
    if missing_in_program:
        return (
            f"Checkpoint {path} does not match the model: it holds {', '.join(missing_in_program[:10])}, "
            "which the model and optimizer do not have. It was written with a different configuration (e.g. more "
            "layers); use its configuration or a new model directory."
        )
    return f"Checkpoint {path} does not match the objects being restored: {message[:1000]}"


class PreemptionHandler:
    """Records that a stop signal arrived; the train loop polls `should_stop` between steps.

    The signal handler only sets a flag (it runs between Python bytecodes, so a step in progress finishes
    first). Uninstall restores the previous handlers. Multi-worker note: a signal delivered to only some
    workers stops only those; synchronise the decision across workers (e.g. all-reduce the flag) or use
    `tf.distribute.experimental.PreemptionCheckpointHandler`.
    """

    def __init__(self, signals=(signal.SIGTERM,)):
        self.signals = tuple(signals)
        self._event = threading.Event()
        self.received_signal = None
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        self.received_signal = signal.Signals(signum).name
        self._event.set()

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("install_preemption_handler() must be called from the main thread.")
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def uninstall(self):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    @property
    def should_stop(self):
        """True once a stop signal arrived: save at this step boundary and leave the loop."""
        return self._event.is_set()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.uninstall()


def install_preemption_handler(signals=(signal.SIGTERM,)):
    """Installs a `PreemptionHandler` for `signals` (default SIGTERM) and returns it.

    Use as a context manager to restore the previous handlers when training ends.
    """
    return PreemptionHandler(signals).install()
