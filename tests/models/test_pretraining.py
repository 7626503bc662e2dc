"""Pretraining models and objectives: label semantics, gradient paths, losses that fall on a fixed batch."""
import keras
import numpy as np
import tensorflow as tf

from plm_tf.models import objectives
from plm_tf.models.pretraining import ElectraPretrainer, MaskedLMPretrainer
from plm_tf.models.sampling import gumbel_max_sample, scatter_at_positions

TINY = dict(
    vocab_size=60, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, embedding_size=16,
    max_position_embeddings=32, dropout_rate=0.0, attention_dropout_rate=0.0, activation="gelu_exact",
    layer_norm_epsilon=1e-12, initializer_range=0.02, type_vocab_size=2, position_offset=0, share="none",
    num_hidden_groups=1, inner_group_num=1, use_pooler=True,
)


def fixed_batch(seed=0, batch=4, length=12, predictions=3, pad_from=9):
    rng = np.random.default_rng(seed)
    original = rng.integers(5, 60, size=(batch, length)).astype("int32")
    mask = np.ones((batch, length), "int32")
    mask[1:, pad_from:] = 0
    positions = np.stack([rng.choice(np.arange(1, pad_from), predictions, replace=False) for _ in range(batch)])
    weights = np.ones((batch, predictions), "float32")
    weights[0, -1] = 0.0  # one padding slot
    masked = original.copy()
    for b in range(batch):
        for p, w in zip(positions[b], weights[b]):
            if w:
                masked[b, p] = 4  # [MASK]
    return {
        "input_ids": masked * mask,
        "input_mask": mask,
        "segment_ids": np.zeros_like(mask),
        "masked_lm_positions": positions.astype("int32"),
        "masked_lm_ids": np.take_along_axis(original, positions, 1).astype("int32"),
        "masked_lm_weights": weights,
        "sentence_order_label": np.array([0, 1, 0, 1], "int32"),
        "next_sentence_label": np.array([1, 0, 0, 1], "int32"),
    }


def train_losses(model, objective, batch, steps=60, learning_rate=3e-3):
    """Adam on one fixed batch (no dropout in TINY); returns the per-step normalised losses."""
    optimizer = keras.optimizers.Adam(learning_rate)
    batch = {k: tf.constant(v) for k, v in batch.items()}

    @tf.function
    def step_fn(step):
        with tf.GradientTape() as tape:
            kwargs = {"sampling_seed": tf.stack([0, step])} if objective == "electra" else {}
            outputs = model(batch, training=True, **kwargs)
            terms, _ = objectives.loss_terms(objective, batch, outputs)
            loss, losses = objectives.total_loss(terms, {k: d for k, (_, d) in terms.items()})
        variables = [v for v in model.trainable_variables if "pooler" not in v.path or objective != "mlm"]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return losses

    return [{k: float(v) for k, v in step_fn(tf.constant(i)).items()} for i in range(steps)]


class SamplingTest(tf.test.TestCase):
    def test_gumbel_max_follows_the_softmax(self):
        logits = np.log(np.array([[[0.7, 0.2, 0.1]]], "float32"))
        logits = np.repeat(logits, 4000, axis=1)
        samples = gumbel_max_sample(logits, tf.constant([1, 2])).numpy().ravel()
        self.assertAllClose(np.bincount(samples, minlength=3) / samples.size, [0.7, 0.2, 0.1], atol=0.025)
        self.assertAllEqual(samples, gumbel_max_sample(logits, tf.constant([1, 2])).numpy().ravel())
        hot = gumbel_max_sample(logits * 100.0, tf.constant([3, 4]), temperature=100.0).numpy().ravel()
        self.assertAllClose(np.bincount(hot, minlength=3) / hot.size, [0.7, 0.2, 0.1], atol=0.025)

    def test_scatter_ignores_zero_weight_slots(self):
        ids = np.array([[10, 11, 12, 13]], "int32")
        out, written = scatter_at_positions(ids, np.array([[1, 0]]), np.array([[99, 98]]), np.array([[1.0, 0.0]]))
        self.assertAllEqual(out, [[10, 99, 12, 13]])
        self.assertAllEqual(written, [[False, True, False, False]])


class ElectraTest(tf.test.TestCase):
    def setUp(self):
        self.model = ElectraPretrainer(TINY, generator_hidden_fraction=0.5)
        self.batch = fixed_batch()

    def test_labels_are_final_token_differs_from_original(self):
        out = self.model(self.batch, sampling_seed=tf.constant([5, 6]))
        fake = out["discriminator_input_ids"].numpy()
        original = self.batch["input_ids"].copy()
        for b in range(4):
            for p, w, label in zip(
                self.batch["masked_lm_positions"][b], self.batch["masked_lm_weights"][b], self.batch["masked_lm_ids"][b]
            ):
                if w:
                    original[b, p] = label
        expected = (fake != original) & (self.batch["input_mask"] == 1)
        self.assertAllEqual(out["discriminator_labels"].numpy(), expected.astype("int32"))
        # Only the masked slots can change; a sample equal to the original is labelled real.
        self.assertAllEqual(fake[self.batch["input_mask"] == 0], original[self.batch["input_mask"] == 0])
        sampled = out["sampled_ids"].numpy()
        slots = self.batch["masked_lm_weights"] > 0
        for b, p in zip(*np.nonzero(slots)):
            self.assertEqual(fake[b, self.batch["masked_lm_positions"][b, p]], sampled[b, p])

    def test_sample_equal_to_original_is_labelled_real(self):
        # Force the generator to predict the original token: labels must then be all zero.
        self.model(self.batch, sampling_seed=tf.constant([0, 0]))
        bias = np.full(60, -1e4, "float32")
        batch = dict(self.batch)
        batch["masked_lm_ids"] = np.full_like(batch["masked_lm_ids"], 7)
        bias[7] = 1e4
        self.model.generator_head.output_bias.assign(bias)
        out = self.model(batch, sampling_seed=tf.constant([1, 1]))
        self.assertAllEqual(out["sampled_ids"].numpy()[batch["masked_lm_weights"] > 0], [7] * 11)
        self.assertEqual(int(tf.reduce_sum(out["discriminator_labels"])), 0)

    def test_embeddings_shared_and_discriminator_loss_reaches_generator_only_through_them(self):
        model = self.model
        self.assertIs(model.generator.embeddings, model.discriminator.embeddings)
        with tf.GradientTape() as tape:
            out = model(self.batch, training=True, sampling_seed=tf.constant([2, 3]))
            disc_sum, disc_count, _ = objectives.discriminator_terms(
                out["discriminator_logits"], out["discriminator_labels"], self.batch["input_mask"]
            )
            loss = disc_sum / disc_count
        shared = {id(v) for v in model.discriminator.embeddings.trainable_variables}
        generator_only = [
            v for v in model.generator.trainable_variables + model.generator_head.trainable_variables
            if id(v) not in shared
        ]
        grads = tape.gradient(loss, generator_only + model.discriminator.embeddings.trainable_variables)
        self.assertTrue(all(g is None for g in grads[: len(generator_only)]))
        self.assertTrue(all(g is not None for g in grads[len(generator_only):]))

    def test_untied_generator_has_its_own_embeddings(self):
        model = ElectraPretrainer(TINY, generator_hidden_fraction=0.5, tie_embeddings=False)
        model.build()
        self.assertIsNot(model.generator.embeddings, model.discriminator.embeddings)
        self.assertEqual(model.generator.hidden_size, 16)
        self.assertEqual(model.generator.num_heads, 1)
        self.assertEqual(model.generator.intermediate_size, 64)

    def test_losses_fall_on_a_fixed_batch_and_total_weights_discriminator_by_50(self):
        history = train_losses(self.model, "electra", self.batch)
        # The generator shares its embeddings with a discriminator whose loss weighs 50×, so its MLM loss
        # falls more slowly than a lone MLM's; both must fall clearly on a batch this small.
        self.assertLess(history[-1]["mlm"], 0.8 * history[0]["mlm"])
        self.assertLess(history[-1]["discriminator"], 0.8 * history[0]["discriminator"])
        out = self.model(self.batch, sampling_seed=tf.constant([0, 0]))
        terms, _ = objectives.loss_terms("electra", self.batch, out)
        total, losses = objectives.total_loss(terms, {k: d for k, (_, d) in terms.items()})
        self.assertAllClose(total, losses["mlm"] + 50.0 * losses["discriminator"])

    def test_config_round_trip(self):
        clone = ElectraPretrainer.from_config(self.model.get_config())
        self.assertEqual(clone.get_config(), self.model.get_config())
        self.assertIs(clone.generator.embeddings, clone.discriminator.embeddings)


class MaskedLMTest(tf.test.TestCase):
    def test_each_objective_loss_falls_on_a_fixed_batch(self):
        batch = fixed_batch(seed=1)
        for objective in ("mlm", "mlm_nsp", "mlm_sop"):
            with self.subTest(objective=objective):
                model = MaskedLMPretrainer(TINY, objective=objective)
                history = train_losses(model, objective, batch)
                self.assertLess(history[-1]["mlm"], 0.5 * history[0]["mlm"])
                if objective != "mlm":
                    self.assertLess(history[-1]["sentence"], 0.5 * history[0]["sentence"])
                    self.assertEqual(model.sentence_label_key,
                                     {"mlm_nsp": "next_sentence_label", "mlm_sop": "sentence_order_label"}[objective])
                else:
                    self.assertNotIn("sentence", history[-1])

    def test_masked_lm_loss_is_a_weighted_token_mean(self):
        logits = np.log(np.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]], "float32"))
        total, count, correct = objectives.masked_lm_terms(
            logits, np.array([[0, 1]], "int32"), np.array([[1.0, 0.0]], "float32")
        )
        self.assertAllClose(total / count, -np.log(0.5))
        self.assertEqual(float(correct), 1.0)

    def test_auc_from_histograms(self):
        self.assertAllClose(objectives.auc_from_histograms([0, 0, 2], [2, 0, 0]), 1.0)
        self.assertAllClose(objectives.auc_from_histograms([1, 1], [1, 1]), 0.5)
        self.assertAllClose(objectives.auc_from_histograms([0, 1, 1], [1, 1, 0]), (1 + 0.5 + 1 + 1) / 4)

    def test_sentence_objective_needs_pooler(self):
        with self.assertRaisesRegex(ValueError, "needs the pooler"):
            MaskedLMPretrainer(dict(TINY, use_pooler=False), objective="mlm_sop")


if __name__ == "__main__":
    tf.test.main()
