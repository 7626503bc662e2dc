"""Per-pipeline input positions (plm_tf.training.input_positions) and the input layout of strategies."""
import os

import tensorflow as tf

from plm_tf.training import checkpointing, distribution
from plm_tf.training.input_positions import InputPositions


def numbers():
    return tf.data.Dataset.range(1000).batch(2)


class InputPositionsTest(tf.test.TestCase):

    def test_restores_the_position_saved_for_a_step(self):
        model_dir = self.get_temp_dir()
        iterator = iter(numbers())
        positions = InputPositions(model_dir, 1, iterator, max_to_keep=2)
        for step in (2, 4, 6):
            next(iterator)
            positions.save(step)
        self.assertEqual(sorted(os.listdir(os.path.join(model_dir, "input", "pipeline-1"))),
                         ["ckpt-4.data-00000-of-00001", "ckpt-4.index", "ckpt-6.data-00000-of-00001", "ckpt-6.index"])
        fresh = iter(numbers())
        InputPositions(model_dir, 1, fresh, max_to_keep=2).restore(4)
        self.assertAllEqual(next(fresh), [4, 5])  # two batches were taken before step 4 was saved

    def test_missing_or_damaged_position_is_one_error(self):
        model_dir = self.get_temp_dir()
        positions = InputPositions(model_dir, 0, iter(numbers()), max_to_keep=2)
        with self.assertRaisesRegex(checkpointing.CheckpointDamagedError, "pipeline 0 for step 8 is missing"):
            positions.restore(8)
        positions.save(8)
        data = positions.prefix(8) + ".data-00000-of-00001"
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 2)
        with self.assertRaisesRegex(checkpointing.CheckpointDamagedError, "pipeline 0 for step 8 .* is damaged"):
            positions.restore(8)


class InputLayoutTest(tf.test.TestCase):

    def test_single_process_strategies_have_one_pipeline(self):
        layout = distribution.input_layout(tf.distribute.get_strategy())
        self.assertEqual(layout, distribution.InputLayout(1, 0, 1))
        context = distribution.input_context(tf.distribute.get_strategy())
        self.assertEqual((context.num_input_pipelines, context.input_pipeline_id), (1, 0))
        self.assertFalse(distribution.uses_distributed_input(tf.distribute.get_strategy()))
