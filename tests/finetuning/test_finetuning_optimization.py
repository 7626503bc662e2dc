"""ELECTRA's layer-wise LR decay: the depth of every variable of a tiny encoder, and the applied step sizes."""
import keras
import numpy as np
import tensorflow as tf

from plm_tf.finetuning import optimization
from plm_tf.finetuning.model import ClassifierModel
from plm_tf.models.encoder import TransformerEncoder
from plm_tf.training import optimizers as base

TINY = dict(vocab_size=50, hidden_size=32, num_layers=3, num_heads=2, intermediate_size=64, embedding_size=16,
            max_position_embeddings=32, dropout_rate=0.0, attention_dropout_rate=0.0)


def _classifier(**overrides):
    keras.utils.set_random_seed(0)  # identical initial weights in every call
    encoder = TransformerEncoder(**dict(TINY, **overrides), name="encoder")
    model = ClassifierModel(encoder, num_classes=3, name="classifier")
    model.build()
    return model


def _get(by_path, suffix):
    """The value of the one path ending with `suffix` (the model's name scope prefixes paths)."""
    matches = [path for path in by_path if path.endswith(suffix)]
    assert len(matches) == 1, (suffix, matches)
    return by_path[matches[0]]


def _expected_depth(path, num_layers=3):
    """google-research/electra `_get_layer_lrs`, keyed on our variable names."""
    if "/embeddings/" in path or "/embedding_projection/" in path:
        return 0
    if "/task_head/" in path:
        return num_layers + 2
    if "/pooler/" in path:
        return num_layers + 1
    for layer in range(num_layers):
        if f"/layer_{layer}/" in path:
            return layer + 1
    raise AssertionError(f"unexpected variable {path}")


class LayerDepthTest(tf.test.TestCase):

    def test_every_variable_electra(self):
        model = _classifier(use_pooler=False)
        depths = optimization.layer_depths(model.encoder, [model.head])
        paths = [v.path for v in model.trainable_variables]
        self.assertCountEqual(depths, paths)
        for path in paths:
            self.assertEqual(depths[path], _expected_depth(path), msg=path)
        multipliers = optimization.layerwise_lr_multipliers(model.encoder, [model.head], 0.8)
        # decay ** (L + 2 - depth) with L = 3.
        self.assertAlmostEqual(_get(multipliers, "encoder/embeddings/word_embeddings"), 0.8**5)
        self.assertAlmostEqual(_get(multipliers, "encoder/embedding_projection/kernel"), 0.8**5)
        self.assertAlmostEqual(_get(multipliers, "encoder/layer_0/attention/self_attention/query/kernel"), 0.8**4)
        self.assertAlmostEqual(_get(multipliers, "encoder/layer_1/feed_forward/layer_norm/gamma"), 0.8**3)
        self.assertAlmostEqual(_get(multipliers, "encoder/layer_2/feed_forward/output_dense/bias"), 0.8**2)
        self.assertEqual(_get(multipliers, "task_head/classifier/kernel"), 1.0)
        self.assertEqual(sorted(set(round(m, 6) for m in multipliers.values())),
                         [round(0.8**k, 6) for k in (5, 4, 3, 2, 0)])

    def test_pooler_sits_between_last_layer_and_head(self):
        model = _classifier(use_pooler=True)
        depths = optimization.layer_depths(model.encoder, [model.head])
        self.assertEqual(_get(depths, "encoder/pooler/kernel"), 4)
        self.assertEqual(_get(depths, "task_head/classifier/bias"), 5)

    def test_shared_layers_need_decay_one(self):
        model = _classifier(share="all")
        with self.assertRaisesRegex(ValueError, "shared across layers"):
            optimization.layerwise_lr_multipliers(model.encoder, [model.head], 0.8)
        ones = optimization.layerwise_lr_multipliers(model.encoder, [model.head], 1.0)
        self.assertEqual(set(ones.values()), {1.0})
        self.assertCountEqual(ones, [v.path for v in model.trainable_variables])

    def test_bad_decay(self):
        model = _classifier()
        with self.assertRaisesRegex(ValueError, "layer_decay"):
            optimization.layerwise_lr_multipliers(model.encoder, [model.head], 0.0)


class MultiplierOptimizerTest(tf.test.TestCase):

    def _step(self, optimizer_name, multipliers, learning_rate=1e-2):
        """One update of every variable of a tiny classifier with a fixed gradient; returns {path: delta}."""
        model = _classifier(use_pooler=False)
        variables = model.trainable_variables
        before = {v.path: v.numpy().copy() for v in variables}
        rng = np.random.default_rng(0)
        grads = [tf.constant(rng.normal(size=v.shape).astype(np.float32)) for v in variables]
        optimizer = optimization.finetuning_optimizer(
            learning_rate, learning_rate_multipliers=multipliers(model) if multipliers else None,
            name=optimizer_name, weight_decay=0.01, clip_norm=0)
        optimizer.build(variables)
        optimizer.apply_gradients(zip(grads, variables))
        return model, {v.path: v.numpy() - before[v.path] for v in variables}, optimizer

    def test_steps_scale_with_multipliers(self):
        for name in ("adamw", "lamb", "adam_fairseq"):
            decayed = lambda model: optimization.layerwise_lr_multipliers(model.encoder, [model.head], 0.8)
            model, deltas, optimizer = self._step(name, decayed)
            _, plain, _ = self._step(name, None)
            multipliers = decayed(model)
            for variable in model.trainable_variables:
                path = variable.path
                self.assertAlmostEqual(optimizer.learning_rate_multiplier(variable), multipliers[path])
                # Same initial weights and gradients: each step is its multiplier times the undecayed step.
                np.testing.assert_allclose(deltas[path], multipliers[path] * plain[path], rtol=2e-3, atol=1e-9,
                                           err_msg=f"{name} {path}")

    def test_missing_multiplier_is_an_error(self):
        model = _classifier()
        optimizer = optimization.finetuning_optimizer(1e-3, learning_rate_multipliers={"encoder/nothing": 1.0})
        with self.assertRaisesRegex(ValueError, "No learning-rate multiplier for variables"):
            optimizer.build(model.trainable_variables)

    def test_update_rule_is_the_pretraining_one(self):
        self.assertIsInstance(optimization.finetuning_optimizer(1e-3), base.AdamWeightDecay)
        self.assertIsInstance(optimization.finetuning_optimizer(1e-3, name="lamb"), base.Lamb)
        self.assertIsInstance(optimization.finetuning_optimizer(1e-3, name="adam_fairseq"), base.FairseqAdam)
        with self.assertRaisesRegex(ValueError, "Unknown optimizer"):
            optimization.finetuning_optimizer(1e-3, name="sgd")


if __name__ == "__main__":
    tf.test.main()
