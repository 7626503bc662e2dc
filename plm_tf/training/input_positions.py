"""Where each input pipeline of a multi-worker run stands, saved beside the run's checkpoints.

With several input pipelines (`plm_tf.data.sharding`) every worker's iterator is at its own position, so the
iterator cannot be part of the collective checkpoint, which only the chief writes. Instead each worker writes
its iterator state, for the step of every checkpoint, to

    model_dir/input/pipeline-<p>/ckpt-<step>.index / .data-*

*before* the collective save of that step: when the checkpoint `ckpt-<step>` exists, every pipeline's position
for it exists too. On resume each worker restores its own position for the restored step; a position that is
missing or damaged stops the run with one error (a worker that fell back alone would train on other batches
than its peers). The newest `max_to_keep` positions are kept, as for the checkpoints.
"""
import os
import re

import tensorflow as tf

from plm_tf.training import checkpointing

_POSITION_FILE = re.compile(r"^ckpt-(\d+)\.index$")


class InputPositions:
    """Saves and restores one pipeline's input iterator per checkpoint step.

    Args:
        model_dir: the run's model directory (a file system every worker can write, as for the checkpoints).
        pipeline_id: p, this worker's input pipeline.
        iterator: its tf.data iterator (checkpointable).
        max_to_keep: positions kept (the checkpoints' `keep_checkpoints`).
    """

    def __init__(self, model_dir, pipeline_id, iterator, max_to_keep):
        self.directory = os.path.join(model_dir, "input", f"pipeline-{pipeline_id}")
        self.pipeline_id = pipeline_id
        self.max_to_keep = max_to_keep
        self._checkpoint = tf.train.Checkpoint(iterator=iterator)

    def prefix(self, step):
        return os.path.join(self.directory, f"ckpt-{step}")

    def save(self, step):
        """Writes the iterator state for `step` and removes the positions older than the kept ones."""
        tf.io.gfile.makedirs(self.directory)
        self._checkpoint.write(self.prefix(step))
        steps = sorted(int(m.group(1)) for m in map(_POSITION_FILE.match, tf.io.gfile.listdir(self.directory)) if m)
        for old in steps[:-self.max_to_keep]:
            for name in tf.io.gfile.glob(self.prefix(old) + ".*"):
                tf.io.gfile.remove(name)

    def restore(self, step):
        """Restores the iterator state saved for `step`.

        Raises:
            CheckpointDamagedError: the position is missing or cannot be read.
        """
        prefix = self.prefix(step)
        if not tf.io.gfile.exists(prefix + ".index"):
            raise checkpointing.CheckpointDamagedError(
                f"The input position of pipeline {self.pipeline_id} for step {step} is missing ({prefix}.index): "
                "restart every worker with the same model_dir, or use a new one.", "input position missing")
        try:
            self._checkpoint.read(prefix).assert_consumed()
        except checkpointing._READ_ERRORS as error:
            cause = checkpointing.damage_cause(error)
            raise checkpointing.CheckpointDamagedError(
                f"The input position of pipeline {self.pipeline_id} for step {step} ({prefix}) is damaged: "
                f"{cause}.", cause) from None
