"""Learning-rate schedules of the pretraining recipes, as Keras 3 `LearningRateSchedule`s.

`step` is the number of optimizer updates already applied (`optimizer.iterations`); the value returned is
the learning rate of the next update. All three share one vocabulary: `peak_learning_rate`,
`num_train_steps`, `num_warmup_steps`.

* `WarmupLinearDecay` -- google-research/bert (and albert) `optimization.py`: linear decay from the peak at
  step 0 to 0 at `num_train_steps`; while `step < num_warmup_steps` that value is *replaced* by
  `peak * step / num_warmup_steps`.
* `WarmupPolynomialDecayProduct` -- google-research/electra `model/optimization.py`: the *product*
  `polynomial_decay(step) * min(1, step / num_warmup_steps)`, polynomial decay to 0 with power
  `lr_decay_power` (1 in every published config). Because of the product, the LR at the end of warmup is
  `peak * (1 - warmup / total)`, not the peak.
* `PolynomialDecayWithWarmup` -- fairseq `optim/lr_scheduler/polynomial_decay_schedule.py` (RoBERTa):
  `peak * step / warmup` for `step <= warmup`, then
  `(peak - end) * (1 - (step - warmup) / (total - warmup)) ** power + end`, and `end` from `total` on.
"""

import gin
import keras
import tensorflow as tf


def _validate(peak_learning_rate, num_train_steps, num_warmup_steps, name):
    """Errors name the gin binding to change (`name` is the schedule's configurable, e.g. a shortened
    TRAIN_STEPS that leaves a published warmup longer than the run)."""
    if num_train_steps <= 0:
        raise ValueError(f"{name}.num_train_steps must be > 0, got {num_train_steps}.")
    if num_warmup_steps < 0:
        raise ValueError(f"{name}.num_warmup_steps must be >= 0, got {num_warmup_steps}.")
    if num_warmup_steps > num_train_steps:
        raise ValueError(
            f"{name}.num_warmup_steps = {num_warmup_steps} is longer than the run's {num_train_steps} train "
            f"steps; shorten it with the steps, e.g. --gin_param='{name}.num_warmup_steps = "
            f"{max(num_train_steps // 10, 1)}'."
        )
    if peak_learning_rate < 0:
        raise ValueError(f"peak_learning_rate must be >= 0, got {peak_learning_rate}.")


class _WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Holds the shared arguments and their config."""

    def __init__(self, peak_learning_rate, num_train_steps, num_warmup_steps=0):
        _validate(peak_learning_rate, num_train_steps, num_warmup_steps, type(self).__name__)
        self.peak_learning_rate = float(peak_learning_rate)
        self.num_train_steps = int(num_train_steps)
        self.num_warmup_steps = int(num_warmup_steps)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "num_train_steps": self.num_train_steps,
            "num_warmup_steps": self.num_warmup_steps,
        }

    def _linear_decay(self, step, power=1.0, end_learning_rate=0.0):
        """`tf.compat.v1.train.polynomial_decay(peak, step, num_train_steps, end, power, cycle=False)`."""
        fraction = tf.minimum(step, float(self.num_train_steps)) / float(self.num_train_steps)
        return (self.peak_learning_rate - end_learning_rate) * (1.0 - fraction) ** power + end_learning_rate


@gin.configurable
@keras.saving.register_keras_serializable(package="plm_tf")
class WarmupLinearDecay(_WarmupSchedule):
    """BERT/ALBERT: linear decay to 0 at `num_train_steps`, replaced by a linear ramp during warmup.

    Args:
        peak_learning_rate: LR the ramp reaches (BERT 1e-4, ALBERT 0.00176).
        num_train_steps: step at which the LR reaches 0.
        num_warmup_steps: length of the ramp (BERT 10,000, ALBERT 3,125); 0 for none.

    Example:
        >>> schedule = WarmupLinearDecay(1e-4, num_train_steps=1000, num_warmup_steps=100)
        >>> float(schedule(50))   # 1e-4 * 50 / 100
        5e-05
    """

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decayed = self._linear_decay(step)
        if not self.num_warmup_steps:
            return decayed
        warmup = self.peak_learning_rate * step / float(self.num_warmup_steps)
        return tf.where(step < float(self.num_warmup_steps), warmup, decayed)


@gin.configurable
@keras.saving.register_keras_serializable(package="plm_tf")
class WarmupPolynomialDecayProduct(_WarmupSchedule):
    """ELECTRA: `polynomial_decay(step; power=lr_decay_power, end=0) * min(1, step / num_warmup_steps)`.

    Args:
        peak_learning_rate: LR before decay (ELECTRA-Small 5e-4, Base/Large 2e-4).
        num_train_steps: step at which the LR reaches 0.
        num_warmup_steps: warmup length (10,000 in all published runs); 0 for none.
        lr_decay_power: power of the polynomial decay (ELECTRA's `lr_decay_power`, 1.0 = linear).

    Example:
        >>> schedule = WarmupPolynomialDecayProduct(1e-4, num_train_steps=1000, num_warmup_steps=100)
        >>> round(float(schedule(50)), 10)  # 1e-4 * (1 - 50/1000) * 50/100
        4.75e-05
    """

    def __init__(self, peak_learning_rate, num_train_steps, num_warmup_steps=0, lr_decay_power=1.0):
        super().__init__(peak_learning_rate, num_train_steps, num_warmup_steps)
        self.lr_decay_power = float(lr_decay_power)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decayed = self._linear_decay(step, power=self.lr_decay_power)
        if not self.num_warmup_steps:
            return decayed
        return decayed * tf.minimum(1.0, step / float(self.num_warmup_steps))

    def get_config(self):
        config = super().get_config()
        config["lr_decay_power"] = self.lr_decay_power
        return config


@gin.configurable
@keras.saving.register_keras_serializable(package="plm_tf")
class PolynomialDecayWithWarmup(_WarmupSchedule):
    """fairseq `polynomial_decay` with `--warmup-updates` (RoBERTa: peak 6e-4, warmup 24K, 500K updates).

    Args:
        peak_learning_rate: fairseq `--lr`.
        num_train_steps: fairseq `--total-num-update`.
        num_warmup_steps: fairseq `--warmup-updates`; 0 for none.
        end_learning_rate: fairseq `--end-learning-rate` (0).
        power: fairseq `--power` (1.0 = linear).

    Example:
        >>> schedule = PolynomialDecayWithWarmup(6e-4, num_train_steps=1000, num_warmup_steps=100)
        >>> round(float(schedule(550)), 10)  # 6e-4 * (1 - 450 / 900)
        0.0003
    """

    def __init__(
        self, peak_learning_rate, num_train_steps, num_warmup_steps=0, end_learning_rate=0.0, power=1.0
    ):
        super().__init__(peak_learning_rate, num_train_steps, num_warmup_steps)
        if num_warmup_steps == num_train_steps:
            raise ValueError("PolynomialDecayWithWarmup needs num_warmup_steps < num_train_steps.")
        self.end_learning_rate = float(end_learning_rate)
        self.power = float(power)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = float(self.num_warmup_steps)
        total = float(self.num_train_steps)
        remaining = 1.0 - (tf.minimum(step, total) - warmup) / (total - warmup)
        decayed = (self.peak_learning_rate - self.end_learning_rate) * remaining**self.power + self.end_learning_rate
        decayed = tf.where(step >= total, self.end_learning_rate, decayed)
        if not self.num_warmup_steps:
            return decayed
        return tf.where(step <= warmup, self.peak_learning_rate * step / warmup, decayed)

    def get_config(self):
        config = super().get_config()
        config.update({"end_learning_rate": self.end_learning_rate, "power": self.power})
        return config
