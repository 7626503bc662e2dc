"""PretrainingEvaluator: exact repeatability (fixed batches and samples, dropout off) and metric semantics."""
import math

import numpy as np
import tensorflow as tf

from plm_tf.data import pipelines
from plm_tf.evaluation import evaluator as evaluation
from plm_tf.evaluation import metrics as metrics_lib
from plm_tf.models.pretraining import ElectraPretrainer, MaskedLMPretrainer

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, embedding_size=16,
            max_position_embeddings=64, activation="gelu_exact", layer_norm_epsilon=1e-12, initializer_range=0.02,
            dropout_rate=0.5, attention_dropout_rate=0.5)  # heavy dropout: a leak would change every number


def batches(objective, num_batches=2):
    kind = pipelines.DEFAULT_TOKENIZER[objective]
    return evaluation.evaluation_batches(objective, None, "heldout", kind, None, 32, 4, num_batches)


def vocab_size(objective):
    return pipelines.load_tokenizer(pipelines.DEFAULT_TOKENIZER[objective]).vocab_size


class EvaluatorTest(tf.test.TestCase):
    def test_electra_evaluation_is_exactly_repeatable(self):
        model = ElectraPretrainer(dict(TINY, vocab_size=vocab_size("electra")), generator_hidden_fraction=0.5)
        model.build()
        first = evaluation.PretrainingEvaluator(model, "electra", batches("electra")).evaluate()
        again = evaluation.PretrainingEvaluator(model, "electra", batches("electra")).evaluate()
        self.assertEqual(first, again)  # bit-identical: same masks, samples and no dropout
        expected = {"loss", "mlm_loss", "mlm_perplexity", "mlm_accuracy", "discriminator_loss",
                    "discriminator_accuracy", "discriminator_auc", "discriminator_precision",
                    "discriminator_recall", "replaced_fraction", "sampled_equals_original", "mean_cosine",
                    "effective_rank"}
        self.assertEqual(set(first), expected)
        self.assertAlmostEqual(first["mlm_perplexity"], math.exp(first["mlm_loss"]), places=6)
        self.assertAlmostEqual(first["loss"], first["mlm_loss"] + 50.0 * first["discriminator_loss"], places=6)
        # An untrained generator almost never samples the original, so ≈ every masked slot is "replaced".
        self.assertBetween(first["replaced_fraction"], 0.08, 0.2)
        self.assertBetween(first["effective_rank"], 1.0, 32.0)

    def test_metrics_match_a_direct_computation(self):
        model = ElectraPretrainer(dict(TINY, vocab_size=vocab_size("electra")), generator_hidden_fraction=0.5)
        model.build()
        eval_batches = batches("electra", num_batches=1)
        result = evaluation.PretrainingEvaluator(model, "electra", eval_batches).evaluate()
        batch = {k: tf.constant(v) for k, v in eval_batches[0].items()}
        outputs = model(batch, training=False, sampling_seed=tf.constant([evaluation.EVAL_SEED, 0]))
        real = eval_batches[0]["input_mask"].astype(bool)
        logits = outputs["discriminator_logits"].numpy()[real]
        labels = outputs["discriminator_labels"].numpy()[real]
        vectors = outputs["sequence_output"].numpy()[real]
        self.assertAlmostEqual(result["discriminator_auc"], metrics_lib.roc_auc(logits, labels), places=12)
        self.assertAlmostEqual(result["replaced_fraction"], labels.mean(), places=12)
        self.assertAlmostEqual(result["mean_cosine"], metrics_lib.mean_pairwise_cosine(vectors), places=5)
        self.assertAlmostEqual(result["effective_rank"], metrics_lib.effective_rank(vectors), places=4)
        predicted = logits > 0
        if predicted.any():
            self.assertAlmostEqual(result["discriminator_precision"], labels[predicted].mean(), places=6)
        self.assertAlmostEqual(result["discriminator_recall"], predicted[labels == 1].mean(), places=6)

    def test_sentence_objective_metrics(self):
        model = MaskedLMPretrainer(dict(TINY, vocab_size=vocab_size("mlm_sop")), objective="mlm_sop")
        model.build()
        result = evaluation.PretrainingEvaluator(model, "mlm_sop", batches("mlm_sop")).evaluate()
        self.assertIn("sentence_accuracy", result)
        self.assertIn("sentence_loss", result)
        self.assertNotIn("discriminator_auc", result)
        self.assertAlmostEqual(result["loss"], result["mlm_loss"] + result["sentence_loss"], places=6)
        self.assertAllInRange(np.array([result["mlm_accuracy"], result["sentence_accuracy"]]), 0.0, 1.0)

    def test_too_few_batches_is_an_error(self):
        with self.assertRaisesRegex(evaluation.EvaluationError, "give only"):
            evaluation.evaluation_batches("electra", None, "heldout", "wordpiece", None, 128, 5000, 1)
