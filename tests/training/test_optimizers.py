"""Optimizers against NumPy transcriptions of the original update rules (bert/albert/fairseq)."""
import contextlib
import re

import numpy as np
import tensorflow as tf
import keras

from plm_tf.training import optimizers
from plm_tf.training import schedules

EXCLUDE = ("LayerNorm", "layer_norm", "bias")


def _variables():
    """Variables whose paths do and do not match the Google exclusions."""
    rng = np.random.default_rng(0)
    specs = [
        ("encoder/layer_0/attention/query/kernel", (3, 4)),
        ("encoder/layer_0/attention/query/bias", (4,)),
        ("encoder/layer_0/attention/layer_norm/gamma", (4,)),
        ("mlm_head/output_bias", (5,)),
        ("embeddings/word_embeddings", (5, 3)),
        ("zero_init/kernel", (2, 2)),  # zero weights: LAMB's trust ratio must fall back to 1
    ]
    out = []
    for path, shape in specs:
        value = np.zeros(shape) if path.startswith("zero") else rng.normal(size=shape)
        *scopes, name = path.split("/")
        with contextlib.ExitStack() as stack:
            for scope in scopes:
                stack.enter_context(keras.name_scope(scope))
            out.append(keras.Variable(value.astype(np.float32), name=name))
        assert out[-1].path == path, out[-1].path
    return out


def _gradients(variables, steps):
    rng = np.random.default_rng(1)
    return [[rng.normal(size=v.shape).astype(np.float32) for v in variables] for _ in range(steps)]


def _excluded(path, patterns):
    return any(re.search(p, path) for p in patterns)


def _clip(grads, clip_norm):
    if not clip_norm:
        return grads
    norm = np.sqrt(sum(np.sum(np.square(g.astype(np.float64))) for g in grads))
    return [g * clip_norm / max(norm, clip_norm) for g in grads]


def numpy_google(weights, grads_per_step, paths, lr, wd, b1, b2, eps, clip, lamb):
    """google-research/bert AdamWeightDecayOptimizer / albert LAMBOptimizer, in float64."""
    w = [x.astype(np.float64) for x in weights]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    for step, grads in enumerate(grads_per_step):
        grads = _clip([g.astype(np.float64) for g in grads], clip)
        rate = lr(step) if callable(lr) else lr
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            update = m[i] / (np.sqrt(v[i]) + eps)
            if wd and not _excluded(paths[i], EXCLUDE):
                update = update + wd * w[i]
            ratio = 1.0
            if lamb and not _excluded(paths[i], EXCLUDE):
                w_norm, u_norm = np.linalg.norm(w[i]), np.linalg.norm(update)
                ratio = w_norm / u_norm if (w_norm > 0 and u_norm > 0) else 1.0
            w[i] = w[i] - ratio * rate * update
    return w


def numpy_fairseq(weights, grads_per_step, lr, wd, b1, b2, eps):
    """fairseq/optim/adam.py Adam.step, in float64."""
    w = [x.astype(np.float64) for x in weights]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    for step, grads in enumerate(grads_per_step):
        t = step + 1
        rate = lr(step) if callable(lr) else lr
        for i, g in enumerate(grads):
            g = g.astype(np.float64)
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            denom = np.sqrt(v[i]) + eps
            step_size = rate * np.sqrt(1 - b2**t) / (1 - b1**t)
            w[i] = w[i] - wd * rate * w[i]
            w[i] = w[i] - step_size * m[i] / denom
    return w


def _run(optimizer, variables, grads_per_step, function=True):
    def apply(grads):
        optimizer.apply_gradients(zip(grads, variables))

    if function:
        apply = tf.function(apply)
    for grads in grads_per_step:
        apply([tf.constant(g) for g in grads])
    return [v.numpy() for v in variables]


class OptimizerTest(tf.test.TestCase):
    steps = 4

    def _check(self, optimizer, reference):
        variables = _variables()
        initial = [v.numpy() for v in variables]
        paths = [v.path for v in variables]
        grads = _gradients(variables, self.steps)
        got = _run(optimizer, variables, grads)
        expected = reference(initial, grads, paths)
        for path, g, e, i in zip(paths, got, expected, initial):
            self.assertAllClose(g, e, rtol=1e-6, atol=1e-6, msg=path)
            self.assertNotAllClose(g, i, msg=f"{path} did not move")

    def test_adamw_matches_google_reference(self):
        schedule = schedules.WarmupLinearDecay(0.05, num_train_steps=10, num_warmup_steps=2)
        self._check(
            optimizers.create_optimizer("adamw", learning_rate=schedule, weight_decay=0.1, clip_norm=1.0),
            lambda w, g, p: numpy_google(
                w, g, p, lambda s: float(schedule(s)), 0.1, 0.9, 0.999, 1e-6, 1.0, lamb=False
            ),
        )

    def test_lamb_matches_albert_reference(self):
        self._check(
            optimizers.create_optimizer("lamb", learning_rate=0.01, weight_decay=0.1),
            lambda w, g, p: numpy_google(w, g, p, 0.01, 0.1, 0.9, 0.999, 1e-6, 1.0, lamb=True),
        )

    def test_fairseq_adam_matches_fairseq_reference(self):
        schedule = schedules.PolynomialDecayWithWarmup(0.01, num_train_steps=10, num_warmup_steps=2)
        self._check(
            optimizers.create_optimizer("adam_fairseq", learning_rate=schedule, weight_decay=0.1),
            lambda w, g, p: numpy_fairseq(w, g, lambda s: float(schedule(s)), 0.1, 0.9, 0.98, 1e-6),
        )

    def test_exclusions_key_on_variable_path(self):
        variables = _variables()
        adamw = optimizers.create_optimizer("adamw")
        fairseq = optimizers.create_optimizer("adam_fairseq")
        decayed = {v.path: adamw.uses_weight_decay(v) for v in variables}
        self.assertEqual(
            decayed,
            {
                "encoder/layer_0/attention/query/kernel": True,
                "encoder/layer_0/attention/query/bias": False,
                "encoder/layer_0/attention/layer_norm/gamma": False,
                "mlm_head/output_bias": False,
                "embeddings/word_embeddings": True,
                "zero_init/kernel": True,
            },
        )
        self.assertTrue(all(fairseq.uses_weight_decay(v) for v in variables))
        self.assertFalse(optimizers.create_optimizer("adamw", weight_decay=0.0).uses_weight_decay(variables[0]))

    def test_lamb_trust_ratio_skips_excluded_variables(self):
        # With wd=0 and one step of g = 1, every element of u = m / (sqrt(v) + eps) is 0.1 / (sqrt(0.001) + eps)
        # (no bias correction). The excluded bias takes lr * u; the kernel's step is rescaled to lr * ||w||.
        kernel = keras.Variable(np.full((2, 2), 3.0, np.float32), name="kernel")
        bias = keras.Variable(np.full((2,), 3.0, np.float32), name="bias")
        opt = optimizers.Lamb(learning_rate=0.1, weight_decay=0.0, global_clipnorm=None)
        opt.apply_gradients([(tf.ones((2, 2)), kernel), (tf.ones((2,)), bias)])
        update = 0.1 / (np.sqrt(0.001) + 1e-6)
        self.assertAllClose(bias.numpy(), np.full((2,), 3.0 - 0.1 * update), rtol=1e-6)
        # ratio = ||w|| / ||u|| = 6 / (2 * update): step per element = 0.1 * 6 / 2 = 0.3.
        self.assertAllClose(kernel.numpy(), np.full((2, 2), 2.7), rtol=1e-6)

    def test_global_norm_clipping(self):
        w = keras.Variable(np.zeros(2, np.float32), name="kernel")
        opt = optimizers.AdamWeightDecay(learning_rate=1.0, weight_decay=0.0, beta_1=0.0, beta_2=0.0,
                                         epsilon=1.0, global_clipnorm=1.0)
        # g = (3, 4), norm 5 -> clipped to (0.6, 0.8); with b1=b2=0 the update is g / (|g| + 1).
        opt.apply_gradients([(tf.constant([3.0, 4.0]), w)])
        self.assertAllClose(w.numpy(), [-0.6 / 1.6, -0.8 / 1.8], rtol=1e-6)
        unclipped = keras.Variable(np.zeros(2, np.float32), name="kernel")
        opt = optimizers.create_optimizer("adamw", learning_rate=1.0, weight_decay=0.0, beta_1=0.0,
                                          beta_2=0.0, epsilon=1.0, clip_norm=0)
        opt.apply_gradients([(tf.constant([3.0, 4.0]), unclipped)])
        self.assertAllClose(unclipped.numpy(), [-3.0 / 4.0, -4.0 / 5.0], rtol=1e-6)

    def test_gradient_accumulation_equals_one_big_batch(self):
        """k micro-batches of mean loss accumulate to the update of one batch of k times the size."""
        k, micro, steps = 4, 3, 3
        rng = np.random.default_rng(2)
        x = rng.normal(size=(steps, k * micro, 5)).astype(np.float32)
        y = rng.normal(size=(steps, k * micro, 2)).astype(np.float32)
        init = rng.normal(size=(5, 2)).astype(np.float32)
        for name in ("adamw", "lamb", "adam_fairseq"):
            results = []
            for accumulation in (1, k):
                kernel = keras.Variable(init, name="kernel")
                bias = keras.Variable(np.zeros(2, np.float32), name="bias")
                schedule = schedules.WarmupLinearDecay(0.01, num_train_steps=10, num_warmup_steps=2)
                opt = optimizers.create_optimizer(name, learning_rate=schedule, weight_decay=0.01,
                                                  clip_norm=0.5, gradient_accumulation_steps=accumulation)

                @tf.function
                def train(xb, yb):
                    with tf.GradientTape() as tape:
                        loss = tf.reduce_mean(tf.square(tf.matmul(xb, kernel) + bias - yb))
                    grads = tape.gradient(loss, [kernel, bias])
                    opt.apply_gradients(zip(grads, [kernel, bias]))

                for s in range(steps):
                    n = micro * k // accumulation
                    for j in range(accumulation):
                        train(x[s, j * n:(j + 1) * n], y[s, j * n:(j + 1) * n])
                self.assertEqual(int(opt.iterations), steps, msg=name)
                results.append((kernel.numpy(), bias.numpy()))
            self.assertAllClose(results[0][0], results[1][0], rtol=1e-5, atol=1e-6, msg=name)
            self.assertAllClose(results[0][1], results[1][1], rtol=1e-5, atol=1e-6, msg=name)
            self.assertNotAllClose(results[0][0], init, msg=name)

    def test_accumulation_leaves_weights_until_kth_call(self):
        w = keras.Variable(np.ones(2, np.float32), name="kernel")
        opt = optimizers.create_optimizer("adamw", learning_rate=0.1, gradient_accumulation_steps=3)
        for _ in range(2):
            opt.apply_gradients([(tf.ones(2), w)])
            self.assertAllEqual(w.numpy(), [1.0, 1.0])
        opt.apply_gradients([(tf.ones(2), w)])
        self.assertNotAllClose(w.numpy(), [1.0, 1.0])
        self.assertEqual(int(opt.iterations), 1)

    def test_factory_unknown_name_lists_choices(self):
        with self.assertRaisesRegex(ValueError, r"'adamw', 'lamb', 'adam_fairseq'|adam_fairseq.*adamw.*lamb"):
            optimizers.create_optimizer("sgd")

    def test_factory_recipe_defaults(self):
        adamw = optimizers.create_optimizer("adamw")
        self.assertEqual((adamw.beta_2, adamw.epsilon, adamw.weight_decay, adamw.global_clipnorm),
                         (0.999, 1e-6, 0.01, 1.0))
        fairseq = optimizers.create_optimizer("adam_fairseq")
        self.assertEqual((fairseq.beta_2, fairseq.epsilon, fairseq.weight_decay, fairseq.global_clipnorm),
                         (0.98, 1e-6, 0.01, None))
        self.assertEqual(fairseq.exclude_from_weight_decay_patterns, ())
        lamb = optimizers.create_optimizer("lamb")
        self.assertEqual(lamb.exclude_from_layer_adaptation_patterns, EXCLUDE)

    def test_get_config_round_trips(self):
        schedule = schedules.WarmupPolynomialDecayProduct(2e-4, num_train_steps=100, num_warmup_steps=10)
        for opt in (
            optimizers.create_optimizer("adamw", learning_rate=schedule, gradient_accumulation_steps=2),
            optimizers.create_optimizer("lamb", learning_rate=0.001, exclude_from_weight_decay=["bias"]),
            optimizers.create_optimizer("adam_fairseq", learning_rate=schedule, beta_2=0.95),
        ):
            config = opt.get_config()
            clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
            self.assertIs(type(clone), type(opt))
            self.assertEqual(clone.get_config(), config)

    def test_gin_binds_factory(self):
        import gin

        gin.clear_config()
        try:
            gin.parse_config(["create_optimizer.name = 'lamb'", "create_optimizer.weight_decay = 0.02"])
            opt = optimizers.create_optimizer(learning_rate=0.001)
            self.assertIsInstance(opt, optimizers.Lamb)
            self.assertEqual(opt.weight_decay, 0.02)
        finally:
            gin.clear_config()


if __name__ == "__main__":
    tf.test.main()


class PrecisionTest(tf.test.TestCase):
    """plm_tf.training.precision: one training step of a tiny Dense model under each policy."""

    def setUp(self):
        super().setUp()
        self._saved_policy = keras.mixed_precision.global_policy()

    def tearDown(self):
        keras.mixed_precision.set_global_policy(self._saved_policy)
        super().tearDown()

    def _train_one_step(self, policy, loss_multiplier=1.0):
        from plm_tf.training import precision

        self.assertEqual(precision.set_precision(policy), policy)
        layer = keras.layers.Dense(3, name="dense")
        x = tf.constant(np.random.default_rng(0).normal(size=(4, 5)), tf.float32)
        layer.build((None, 5))
        initial = [v.numpy() for v in layer.trainable_variables]
        with tf.GradientTape() as tape:  # float32 reference gradients, same weights
            kernel, bias = (tf.constant(i) for i in initial)
            tape.watch([kernel, bias])
            reference_loss = tf.reduce_mean(tf.square(x @ kernel + bias - 1.0))
        reference_grads = tape.gradient(reference_loss, [kernel, bias])
        optimizer = precision.wrap_optimizer(
            optimizers.create_optimizer("adamw", learning_rate=0.01, clip_norm=0)
        )
        optimizer.build(layer.trainable_variables)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                y = layer(x)
                loss = tf.reduce_mean(tf.square(tf.cast(y, tf.float32) - 1.0)) * loss_multiplier
                scaled = precision.scale_loss(optimizer, loss)
            grads = precision.minimize(optimizer, tape, scaled, layer.trainable_variables)
            return y, loss, scaled, grads

        y, loss, scaled, grads = step()
        if np.isfinite(loss_multiplier):
            for got, want in zip(grads, reference_grads):
                self.assertAllClose(got, want, rtol=2e-2, atol=1e-3)
        for v in layer.trainable_variables:
            self.assertEqual(v.dtype, "float32")
        moved = [not np.allclose(v.numpy(), i) for v, i in zip(layer.trainable_variables, initial)]
        return optimizer, y.dtype, loss, scaled, grads, moved

    def test_float32(self):
        optimizer, y_dtype, loss, scaled, _, moved = self._train_one_step("float32")
        self.assertEqual(y_dtype, tf.float32)
        self.assertAllEqual(loss, scaled)
        self.assertTrue(all(moved))

    def test_mixed_bfloat16_trains_without_loss_scaling(self):
        optimizer, y_dtype, loss, scaled, _, moved = self._train_one_step("mixed_bfloat16")
        self.assertEqual(y_dtype, tf.bfloat16)
        self.assertNotIsInstance(optimizer, keras.optimizers.LossScaleOptimizer)
        self.assertAllEqual(loss, scaled)
        self.assertTrue(all(moved))

    def test_mixed_float16_scales_the_loss_and_unscales_gradients(self):
        optimizer, y_dtype, loss, scaled, grads, moved = self._train_one_step("mixed_float16")
        self.assertEqual(y_dtype, tf.float16)
        self.assertIsInstance(optimizer, keras.optimizers.LossScaleOptimizer)
        self.assertAllClose(scaled, loss * optimizer.initial_scale, rtol=1e-6)
        self.assertTrue(all(moved))
        self.assertEqual(int(optimizer.iterations), 1)

    def test_mixed_float16_skips_non_finite_step_and_lowers_scale(self):
        optimizer, _, _, _, _, moved = self._train_one_step("mixed_float16", loss_multiplier=float("inf"))
        self.assertFalse(any(moved))
        self.assertEqual(int(optimizer.iterations), 0)
        self.assertEqual(float(optimizer.dynamic_scale), optimizer.initial_scale / 2)

    def test_unknown_policy(self):
        from plm_tf.training import precision

        with self.assertRaisesRegex(ValueError, "float32.*mixed_bfloat16.*mixed_float16"):
            precision.set_precision("float16")

    def test_unbuilt_loss_scale_optimizer_is_rejected(self):
        from plm_tf.training import precision

        optimizer = keras.optimizers.LossScaleOptimizer(optimizers.create_optimizer("adamw"))
        with self.assertRaisesRegex(ValueError, "optimizer.build"):
            precision.scale_loss(optimizer, tf.constant(1.0))
