"""Learning-rate schedules against values computed by hand from the original formulas."""
import keras
import tensorflow as tf

from plm_tf.training import schedules


class ScheduleTest(tf.test.TestCase):
    def _assert_values(self, schedule, expected):
        for step, value in expected.items():
            self.assertAllClose(float(schedule(step)), value, rtol=1e-6, atol=1e-11, msg=f"step {step}")

    def test_bert_warmup_replaces_linear_decay(self):
        # peak 1e-4, 1000 steps, 100 warmup (google-research/bert optimization.py).
        schedule = schedules.WarmupLinearDecay(1e-4, num_train_steps=1000, num_warmup_steps=100)
        self._assert_values(
            schedule,
            {
                0: 0.0,
                1: 1e-6,
                50: 5e-5,
                99: 9.9e-5,
                100: 1e-4 * 0.9,  # warmup over: the linear decay from step 0 has already lost 10%
                500: 5e-5,
                999: 1e-7,
                1000: 0.0,
                5000: 0.0,
            },
        )

    def test_electra_product_of_decay_and_warmup(self):
        # google-research/electra: polynomial_decay(power=1, end=0) * min(1, step / warmup).
        schedule = schedules.WarmupPolynomialDecayProduct(2e-4, num_train_steps=1000, num_warmup_steps=100)
        self._assert_values(
            schedule,
            {
                0: 0.0,
                10: 2e-4 * 0.99 * 0.1,
                50: 2e-4 * 0.95 * 0.5,
                100: 2e-4 * 0.9,
                400: 2e-4 * 0.6,
                1000: 0.0,
                2000: 0.0,
            },
        )
        squared = schedules.WarmupPolynomialDecayProduct(2e-4, 1000, 100, lr_decay_power=2.0)
        self._assert_values(squared, {50: 2e-4 * 0.95**2 * 0.5, 500: 2e-4 * 0.25})

    def test_bert_and_electra_differ_during_warmup(self):
        bert = schedules.WarmupLinearDecay(1e-4, 1000, 100)
        electra = schedules.WarmupPolynomialDecayProduct(1e-4, 1000, 100)
        self.assertGreater(float(bert(50)), float(electra(50)))
        self.assertAllClose(float(bert(200)), float(electra(200)))

    def test_fairseq_polynomial_decay_with_warmup(self):
        # fairseq polynomial_decay: ramp to peak at warmup, then decay over (total - warmup) updates.
        schedule = schedules.PolynomialDecayWithWarmup(6e-4, num_train_steps=1000, num_warmup_steps=100)
        self._assert_values(
            schedule,
            {0: 0.0, 25: 1.5e-4, 100: 6e-4, 325: 6e-4 * 0.75, 550: 3e-4, 1000: 0.0, 1500: 0.0},
        )
        with_end = schedules.PolynomialDecayWithWarmup(
            6e-4, num_train_steps=1000, num_warmup_steps=100, end_learning_rate=1e-5, power=2.0
        )
        self._assert_values(
            with_end, {100: 6e-4, 550: (6e-4 - 1e-5) * 0.25 + 1e-5, 1000: 1e-5, 1200: 1e-5}
        )

    def test_no_warmup(self):
        self._assert_values(schedules.WarmupLinearDecay(1e-3, 10), {0: 1e-3, 5: 5e-4})
        self._assert_values(schedules.WarmupPolynomialDecayProduct(1e-3, 10), {0: 1e-3, 5: 5e-4})
        self._assert_values(schedules.PolynomialDecayWithWarmup(1e-3, 10), {0: 1e-3, 5: 5e-4})

    def test_works_inside_tf_function_with_int64_step(self):
        schedule = schedules.WarmupLinearDecay(1e-4, 1000, 100)
        value = tf.function(schedule)(tf.constant(50, tf.int64))
        self.assertAllClose(value, 5e-5)

    def test_invalid_arguments(self):
        # The message names the gin binding to change and a value that fits.
        with self.assertRaisesRegex(ValueError, r"WarmupLinearDecay.num_warmup_steps = 20 is longer than the "
                                                r"run's 10 train steps.*WarmupLinearDecay.num_warmup_steps = 1'"):
            schedules.WarmupLinearDecay(1e-4, num_train_steps=10, num_warmup_steps=20)
        with self.assertRaisesRegex(ValueError, "num_train_steps"):
            schedules.WarmupPolynomialDecayProduct(1e-4, num_train_steps=0)
        with self.assertRaisesRegex(ValueError, "num_warmup_steps < num_train_steps"):
            schedules.PolynomialDecayWithWarmup(1e-4, num_train_steps=10, num_warmup_steps=10)

    def test_config_round_trip(self):
        for schedule in (
            schedules.WarmupLinearDecay(1e-4, 1000, 100),
            schedules.WarmupPolynomialDecayProduct(2e-4, 1000, 100, lr_decay_power=0.5),
            schedules.PolynomialDecayWithWarmup(6e-4, 1000, 100, end_learning_rate=1e-6, power=2.0),
        ):
            clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
            self.assertIs(type(clone), type(schedule))
            self.assertEqual(clone.get_config(), schedule.get_config())
            self.assertAllClose(float(clone(321)), float(schedule(321)))

    def test_gin_builds_schedule_for_the_optimizer_factory(self):
        import gin

        from plm_tf.training import optimizers

        gin.clear_config()
        try:
            gin.parse_config(
                [
                    "create_optimizer.name = 'adamw'",
                    "create_optimizer.learning_rate = @WarmupPolynomialDecayProduct()",
                    "WarmupPolynomialDecayProduct.peak_learning_rate = 5e-4",
                    "WarmupPolynomialDecayProduct.num_train_steps = 1000",
                    "WarmupPolynomialDecayProduct.num_warmup_steps = 100",
                ]
            )
            optimizer = optimizers.create_optimizer()
        finally:
            gin.clear_config()
        self.assertIsInstance(optimizer.learning_rate, tf.Tensor)
        self.assertAllClose(float(optimizer.learning_rate), 0.0)  # step 0 of the product form
        self.assertAllClose(float(optimizer._learning_rate(50)), 5e-4 * 0.95 * 0.5)


if __name__ == "__main__":
    tf.test.main()
