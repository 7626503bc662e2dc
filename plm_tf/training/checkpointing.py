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
* Damage: `restore_latest` never mistakes a damaged directory for a fresh one. Any sign of an earlier run
  (a `checkpoint` state file, a `ckpt-*` file) means "resume": the newest checkpoint that restores completely
  is used, and the newer ones it skipped are named with their cause (`restore_notice`); if none restores,
  `CheckpointDamagedError` names the files. Damaged newer checkpoints are left on disk and are not in the
  rotation, so a resumed run never deletes a checkpoint newer than the one it resumed from. Stale
  `ckpt-N_temp/` folders of a save killed midway are removed first.
* Reading a checkpoint elsewhere (export, fine-tuning): `reading_checkpoint(path, error)` turns a missing,
  truncated or corrupt file into one `error` naming the cause instead of a traceback or a "does not fit".
* Multi-worker (`MultiWorkerMirroredStrategy`): every worker must call `save` (it is collective); only the
  chief writes to `directory`, the others to a scratch directory that is deleted after each save
  (the pattern of the TensorFlow multi-worker tutorial). Every worker restores from `directory`.

`install_preemption_handler()` (`plm_tf.training.preemption`) turns SIGTERM into a flag the train loop polls at
step boundaries.
"""

import contextlib
import os
import re
import shutil
import sys

import tensorflow as tf

from plm_tf.training import preemption

STATE_FILE = "checkpoint"
_CHECKPOINT_FILE = re.compile(r"^ckpt-(\d+)(\.index|\.data-\d+-of-\d+)$")
_TEMP_FOLDER = re.compile(r"^ckpt-\d+_temp$")
# What TensorFlow raises for files it cannot read: missing (NotFoundError, a bare OpError), corrupt
# (DataLossError "Checksum does not match"), truncated (IndexError "Read less bytes than requested"), a state
# file of binary garbage (UnicodeDecodeError).
_READ_ERRORS = (tf.errors.OpError, IndexError, UnicodeDecodeError, EOFError)

_SHAPE_MISMATCH = re.compile(
    r"incompatible tensor with shape (\(.*?\)) when attempting to restore variable with shape "
    r"(\(.*?\)) and name ([^\s]+?)(?::\d+)?\.?$",
    re.MULTILINE,
)


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the objects it is restored into (different shapes or variables)."""


class CheckpointDamagedError(ValueError):
    """Checkpoint files that cannot be read: missing, truncated or failing their checksum (`cause` says which)."""

    def __init__(self, message, cause=None):
        super().__init__(message)
        self.cause = cause


def damage_cause(error):
    """A short description of why TensorFlow could not read a checkpoint (`error` from a restore)."""
    text = str(getattr(error, "message", None) or error).strip()
    text = re.sub(r"\s*\[Op:\w+\]", "", re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text))
    if "Read less bytes" in text:
        return "its data file is truncated"
    if "Checksum does not match" in text or "checksum" in text.lower():
        return "checksum failure: its data file is corrupt"
    if isinstance(error, UnicodeDecodeError):
        return f"not a text file ({error.reason})"
    if isinstance(error, tf.errors.NotFoundError) or "No such file" in text or "Failed to find any" in text:
        return "files are missing" + (f" ({_last_path(text)})" if _last_path(text) else "")
    return f"unreadable ({(text or type(error).__name__).splitlines()[0][:300]})"


def _last_path(text):
    found = re.findall(r"(/[^\s;:]+)", text)
    return found[0] if found else ""


@contextlib.contextmanager
def reading_checkpoint(path, error=CheckpointDamagedError):
    """Within the block, a checkpoint file that cannot be read raises one `error` naming `path` and the cause.

    Args:
        path: the checkpoint prefix being read (named in the message).
        error: the ValueError subclass raised, so each CLI reports the failure in its own terms.
    """
    try:
        yield
    except _READ_ERRORS as caught:
        raise error(f"Checkpoint {path} is damaged: {damage_cause(caught)}.") from None


def read_state(directory):
    """(`CheckpointState` or None, problem or None) of `directory`'s `checkpoint` state file.

    The problem is a phrase when the file exists but cannot be used (garbage, unreadable); TensorFlow itself
    returns None for that, like for a fresh directory.
    """
    path = os.path.join(directory, STATE_FILE)
    if not tf.io.gfile.exists(path):
        return None, None
    try:
        state = tf.train.get_checkpoint_state(directory)
    except _READ_ERRORS as error:
        return None, f"the state file {path} is {damage_cause(error)}"
    if state is None or not state.model_checkpoint_path:
        return None, f"the state file {path} is not a checkpoint state"
    return state, None


def find_checkpoints(directory):
    """The checkpoints a trainer model_dir holds, newest first, and what is wrong with its state file.

    Returns:
        (prefixes, state_problem): `DIR/ckpt-N` prefixes named by the state file or by a `ckpt-N.index` /
        `ckpt-N.data-*` file on disk (whether or not they are complete), sorted by N descending; and the
        problem of the state file (None when it is fine or absent).
    """
    order = {}  # name -> sort key: the step of `ckpt-<step>`; other names the state file gives come first
    state, problem = read_state(directory)
    if state is not None:
        paths = [*state.all_model_checkpoint_paths, state.model_checkpoint_path]
        for position, path in enumerate(paths):
            name = os.path.basename(path)
            match = re.fullmatch(r"ckpt-(\d+)", name)
            order[name] = int(match.group(1)) if match else float("inf") if path == paths[-1] else -position
    if tf.io.gfile.isdir(directory):
        for name in tf.io.gfile.listdir(directory):
            match = _CHECKPOINT_FILE.match(name.rstrip("/"))
            if match:
                order[f"ckpt-{match.group(1)}"] = int(match.group(1))
    return [os.path.join(directory, name) for name in sorted(order, key=order.get, reverse=True)], problem


def verify_checkpoint(prefix):
    """None if every tensor of the checkpoint `prefix` can be read (index, data, checksums), else the cause."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for key, dtype in reader.get_variable_to_dtype_map().items():
            # RestoreV2, not reader.get_tensor: it also reads the input iterator's variant tensors.
            tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=[key], shape_and_slices=[""], dtypes=[dtype])
    except _READ_ERRORS as error:
        return damage_cause(error)
    return None


def resolve_checkpoint(path, error=ValueError, print_fn=None):
    """The checkpoint prefix (`DIR/ckpt-600`) that `path` names.

    Args:
        path: a checkpoint prefix (with a `<prefix>.index` beside it; every tensor is read once to check it)
            or a directory: a trainer model_dir
            (its newest checkpoint that can be read completely; the skipped newer ones are reported in one
            line), or a folder holding exactly one `*.index` (a released TF1 checkpoint without a state file).
        error: the ValueError subclass raised, so each CLI reports the failure in its own terms.
        print_fn: where the line about skipped damaged checkpoints goes (default: stderr).
    """
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        candidates, state_problem = find_checkpoints(path)
        skipped = [state_problem] if state_problem else []
        for prefix in candidates:
            cause = verify_checkpoint(prefix)
            if cause is None:
                if skipped:
                    line = f"Using {prefix}, the newest complete checkpoint: skipped {'; '.join(skipped)}."
                    (print_fn or (lambda text: print(text, file=sys.stderr, flush=True)))(line)
                return prefix
            skipped.append(f"{os.path.basename(prefix)}: {cause}")
        if skipped:
            raise error(f"{path} holds no checkpoint that can be read ({'; '.join(skipped)}).")
        indexes = sorted(name[: -len(".index")] for name in tf.io.gfile.listdir(path) if name.endswith(".index"))
        if len(indexes) == 1:
            return os.path.join(path, indexes[0])
        if not indexes:
            raise error(f"{path} holds no checkpoint (no `checkpoint` state file and no *.index).")
        raise error(f"{path} holds several checkpoints ({', '.join(indexes)}) and no `checkpoint` state file; "
                    "pass one prefix.")
    if tf.io.gfile.exists(path + ".index"):
        cause = verify_checkpoint(path)
        if cause is not None:
            raise error(f"Checkpoint {path} is damaged: {cause}.")
        return path
    raise error(f"{path} is neither a checkpoint prefix (no {path}.index) nor a directory with checkpoints.")


def is_chief(strategy):
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
        input_positions: for runs with several input pipelines, this worker's
            `plm_tf.training.input_positions.InputPositions` (its iterator is then not in the checkpoint): saved
            before each checkpoint, restored with it.
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
        input_positions=None,
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
        self.input_positions = input_positions
        objects = {"model": model, "optimizer": optimizer, "step": step, **extra_trackables}
        if iterator is not None:
            objects["iterator"] = iterator
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.is_chief = is_chief(strategy)
        if self.is_chief:
            self._write_directory = directory
        else:
            resolver = strategy.cluster_resolver
            self._write_directory = os.path.join(
                directory, f".scratch_{resolver.task_type}_{resolver.task_id}"
            )
        self._max_to_keep = max_to_keep if self.is_chief else 1
        self._save_interval_steps = save_interval_steps
        self._tf_manager = None
        self.restore_notice = None

    @property
    def _manager(self):
        # Created on first use: it reads the state file, which `restore_latest` repairs first if damaged.
        if self._tf_manager is None:
            self._tf_manager = tf.train.CheckpointManager(
                self.checkpoint,
                self._write_directory,
                max_to_keep=self._max_to_keep,
                step_counter=self.step,
                checkpoint_interval=self._save_interval_steps,
            )
        return self._tf_manager

    @property
    def latest_checkpoint(self):
        """Path prefix of the checkpoint the state file of `directory` names as the latest, or None."""
        state, _ = read_state(self.directory)
        return os.path.join(self.directory, os.path.basename(state.model_checkpoint_path)) if state else None

    @property
    def checkpoints(self):
        """Paths of the kept checkpoints, oldest first (of this task's write directory)."""
        return list(self._manager.checkpoints)

    def save(self, force=True):
        """Writes a checkpoint numbered by `step`; returns its path (None if skipped or not the chief).

        Args:
            force: write even if fewer than `save_interval_steps` steps passed since the last one.
        """
        if self.input_positions is not None:  # first: a checkpoint never exists without its input positions
            self.input_positions.save(int(self.step.numpy()))
        path = self._manager.save(checkpoint_number=self.step, check_interval=not force)
        if not self.is_chief:
            shutil.rmtree(self._write_directory, ignore_errors=True)
            return None
        return path

    def restore_latest(self):
        """Restores the newest checkpoint of `directory` that restores completely; returns its step (0 if fresh).

        A directory without a state file and without `ckpt-*` files is fresh. Otherwise the checkpoints are
        tried newest first; the skipped ones and their causes are in `restore_notice` (None when the latest
        restored). The chief removes stale `ckpt-N_temp/` folders first and, after a fallback or with a
        damaged state file, rewrites the state file so that it names the restored checkpoint and the older
        ones (the damaged newer ones stay on disk, out of the rotation).

        Raises:
            ValueError: if the optimizer is not built yet.
            CheckpointMismatchError: if a checkpoint's variables do not fit the model/optimizer.
            CheckpointDamagedError: if there are signs of an earlier run but no checkpoint restores.
        """
        self.restore_notice = None
        if self.is_chief and tf.io.gfile.isdir(self.directory):
            for name in tf.io.gfile.listdir(self.directory):
                if _TEMP_FOLDER.match(name.rstrip("/")):
                    tf.io.gfile.rmtree(os.path.join(self.directory, name.rstrip("/")))
        candidates, state_problem = find_checkpoints(self.directory)
        if not candidates and state_problem is None:
            return 0
        state, _ = read_state(self.directory)
        named_latest = os.path.basename(state.model_checkpoint_path) if state else None
        skipped = [state_problem] if state_problem else []
        for index, prefix in enumerate(candidates):
            try:
                self.restore(prefix)
            except CheckpointDamagedError as error:
                skipped.append(f"{os.path.basename(prefix)}: {error.cause}")
                continue
            if skipped:
                self.restore_notice = "skipped " + "; ".join(skipped)
            if self.is_chief and (skipped or named_latest != os.path.basename(prefix)):
                kept = [os.path.basename(p) for p in reversed(candidates[index:])]
                tf.compat.v1.train.update_checkpoint_state(
                    self.directory, kept[-1], all_model_checkpoint_paths=kept)
                self._tf_manager = None
            if self.input_positions is not None:
                self.input_positions.restore(int(self.step.numpy()))
            return int(self.step.numpy())
        raise CheckpointDamagedError(
            f"{self.directory} holds an earlier run but no checkpoint of it restores ({'; '.join(skipped)}). "
            "Repair or remove those files, or use a new model directory."
        )

    def restore(self, path):
        """Restores the checkpoint at `path` strictly (every object and every saved value must match).

        Raises:
            CheckpointDamagedError: the files are missing, truncated or corrupt (`.cause` says which).
            CheckpointMismatchError: the checkpoint was written for another configuration.
        """
        if not getattr(self.optimizer, "built", True):
            raise ValueError(
                "Build the optimizer before restoring (optimizer.build(model.trainable_variables) inside "
                "strategy.scope()); otherwise its state cannot be matched against the checkpoint."
            )
        try:
            status = self.checkpoint.restore(path)
            status.assert_consumed()
        except _READ_ERRORS as error:
            cause = damage_cause(error)
            raise CheckpointDamagedError(f"Checkpoint {path} is damaged: {cause}.", cause) from None
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


# The SIGTERM handler lives in its own TensorFlow-free module (installed before TensorFlow's import).
PreemptionHandler = preemption.PreemptionHandler
Preempted = preemption.Preempted
install_preemption_handler = preemption.install_preemption_handler
