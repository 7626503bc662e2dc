"""`plm_tf.evaluate` on a `plm_tf.convert` output folder (model.gin + ckpt), and what it refuses."""
import os

import tensorflow as tf

from plm_tf.evaluation import checkpoint as evaluate
from plm_tf.convert import common
from plm_tf.data import pipelines
from plm_tf.evaluation.evaluator import PretrainingEvaluator, evaluation_batches
from plm_tf.evaluation.loading import LoadError

CONFIG = dict(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, embedding_size=16,
              max_position_embeddings=64, type_vocab_size=2, position_offset=0, activation="gelu_exact",
              layer_norm_epsilon=1e-12, dropout_rate=0.1, attention_dropout_rate=0.1, initializer_range=0.02,
              share="none", num_hidden_groups=1, inner_group_num=1, use_pooler=False)


class EvaluateConvertedTest(tf.test.TestCase):
    def write(self, name, **spec_kwargs):
        vocab_size = pipelines.load_tokenizer("wordpiece").vocab_size
        spec = common.ModelSpec("electra", dict(CONFIG, vocab_size=vocab_size), "electra", 0.5, **spec_kwargs)
        model = common.build_model(spec)
        output_dir = os.path.join(self.get_temp_dir(), name)
        common.write_plm_tf(model, spec, output_dir, source="a test")
        return model, output_dir

    def test_converted_electra_is_evaluated_like_the_trainer_would(self):
        model, output_dir = self.write("full")
        result = evaluate.evaluate_checkpoint(output_dir, seq_len=32, batch_size=4, eval_batches=1)
        self.assertEqual((result["layout"], result["objective"], result["step"]), ("converted", "electra", None))
        direct = PretrainingEvaluator(model, "electra", evaluation_batches(
            "electra", None, "heldout", "wordpiece", None, 32, 4, 1)).evaluate()
        self.assertEqual(result["metrics"], direct)  # the restored weights are the written ones

    def test_refusals(self):
        _, without_generator = self.write("disc_only", has_generator=False)
        with self.assertRaisesRegex(LoadError, "without its generator"):
            evaluate.evaluate_checkpoint(without_generator, seq_len=32, batch_size=4, eval_batches=1)
        _, full = self.write("no_sizes")
        with self.assertRaisesRegex(LoadError, "pass --seq_len and --batch_size"):
            evaluate.evaluate_checkpoint(full)
