"""Strategy names and errors, batch arithmetic, and 2-replica runs in subprocesses of their own.

The 2-device tests split the CPU into logical devices, which must happen before TensorFlow initialises
and would leak into every later test, so they run in a fresh interpreter (bounded by a timeout).
"""
import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
from unittest import mock

import pytest
import tensorflow as tf

from plm_tf.training import distribution

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 150


def run_python(code, env_extra=None):
    """Runs `code` in a fresh interpreter with the repository importable; returns its last stdout line."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    env.pop("TF_CONFIG", None)
    env.update(env_extra or {})
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        raise AssertionError(f"subprocess failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


TWO_CPU_SETUP = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""

# Trains a linear model with each optimizer (and AdamW inside a LossScaleOptimizer) for 3 updates
# (2 accumulated micro-batches each, global-norm clipping active) on one device and on MirroredStrategy over 2 logical CPUs, with per-replica losses
# divided by the global batch as the train loop does; prints the largest weight difference per optimizer.
MIRRORED_MATCHES_ONE_DEVICE = TWO_CPU_SETUP + """
import json
import numpy as np
import keras
from plm_tf.training import distribution, optimizers, precision, schedules

rng = np.random.default_rng(0)
STEPS, ACCUMULATION, GLOBAL = 3, 2, 8
x = rng.normal(size=(STEPS * ACCUMULATION * GLOBAL, 5)).astype(np.float32)
y = rng.normal(size=(STEPS * ACCUMULATION * GLOBAL, 2)).astype(np.float32)
init = rng.normal(size=(5, 2)).astype(np.float32)

def train(strategy, name, loss_scaling=False):
    with strategy.scope():
        kernel = keras.Variable(init, name="kernel")
        bias = keras.Variable(np.zeros(2, np.float32), name="bias")
        schedule = schedules.WarmupLinearDecay(0.05, num_train_steps=10, num_warmup_steps=1)
        opt = optimizers.create_optimizer(name, learning_rate=schedule, clip_norm=0.3,
                                          gradient_accumulation_steps=ACCUMULATION)
        if loss_scaling:  # the float16 path: LossScaleOptimizer around ours, loss scaled in the step
            opt = precision.wrap_optimizer(opt, "mixed_float16")
        opt.build([kernel, bias])
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL)
    dist = strategy.experimental_distribute_dataset(data)

    @tf.function
    def step(batch):
        def replica_fn(xb, yb):
            with tf.GradientTape() as tape:
                per_example = tf.reduce_sum(tf.square(xb @ kernel + bias - yb), axis=-1)
                loss = precision.scale_loss(opt, tf.reduce_sum(per_example) / GLOBAL)
            precision.minimize(opt, tape, loss, [kernel, bias])
        strategy.run(replica_fn, args=batch)

    for batch in dist:
        step(batch)
    assert int(opt.iterations.numpy()) == STEPS, opt.iterations
    return np.concatenate([kernel.numpy().ravel(), bias.numpy().ravel()])

mirrored = distribution.create_strategy("mirrored")
result = {"replicas": mirrored.num_replicas_in_sync}
for name in ("adamw", "lamb", "adam_fairseq"):
    one = train(distribution.create_strategy("default"), name)
    two = train(mirrored, name)
    result[name] = float(np.max(np.abs(one - two)))
    result[name + "_moved"] = float(np.max(np.abs(one[:10] - init.ravel())))
one = train(distribution.create_strategy("default"), "adamw", loss_scaling=True)
two = train(mirrored, "adamw", loss_scaling=True)
result["adamw_loss_scaled"] = float(np.max(np.abs(one - two)))
result["adamw_loss_scaled_moved"] = float(np.max(np.abs(one[:10] - init.ravel())))
print(json.dumps(result))
"""


# One worker of a 2-process MultiWorkerMirroredStrategy run (or the single-device baseline): LAMB with
# accumulation and clipping, each worker reading its shard of every global batch; prints the final weights.
MULTI_WORKER_WORKER = """
import json, sys
import numpy as np
import keras
import tensorflow as tf
from plm_tf.training import distribution, optimizers, schedules

strategy = distribution.create_strategy(sys.argv[1])
rng = np.random.default_rng(0)
GLOBAL, ACCUMULATION, STEPS = 8, 2, 3
x = rng.normal(size=(STEPS * ACCUMULATION * GLOBAL, 5)).astype(np.float32)
y = rng.normal(size=(STEPS * ACCUMULATION * GLOBAL, 2)).astype(np.float32)
init = rng.normal(size=(5, 2)).astype(np.float32)
with strategy.scope():
    kernel = keras.Variable(init, name="kernel")
    bias = keras.Variable(np.zeros(2, np.float32), name="bias")
    opt = optimizers.create_optimizer("lamb", learning_rate=schedules.WarmupLinearDecay(0.05, 10, 1),
                                      clip_norm=0.3, gradient_accumulation_steps=ACCUMULATION)
    opt.build([kernel, bias])
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL).with_options(options)

@tf.function
def step(batch):
    def replica_fn(xb, yb):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(xb @ kernel + bias - yb)) / GLOBAL
        grads = tape.gradient(loss, [kernel, bias])
        opt.apply_gradients(zip(grads, [kernel, bias]))
    strategy.run(replica_fn, args=batch)

for batch in strategy.experimental_distribute_dataset(data):
    step(batch)
print(json.dumps([strategy.num_replicas_in_sync] + kernel.numpy().ravel().tolist() + bias.numpy().ravel().tolist()))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StrategyTest(tf.test.TestCase):
    def test_default_is_one_replica(self):
        strategy = distribution.create_strategy("default")
        self.assertEqual(strategy.num_replicas_in_sync, 1)
        self.assertIs(strategy, tf.distribute.get_strategy())

    def test_mirrored_on_one_cpu_is_one_replica(self):
        self.assertEqual(distribution.create_strategy("mirrored").num_replicas_in_sync, 1)

    def test_unknown_name_lists_choices(self):
        with self.assertRaisesRegex(ValueError, r"'mirroed'.*'default', 'mirrored', 'multi_worker_mirrored', 'tpu'"):
            distribution.create_strategy("mirroed")

    def test_tpu_address_only_with_tpu(self):
        with self.assertRaisesRegex(ValueError, "tpu_address"):
            distribution.create_strategy("mirrored", tpu_address="grpc://10.0.0.2:8470")

    def test_multi_worker_needs_valid_tf_config(self):
        cases = {
            None: "needs the TF_CONFIG",
            "{not json": "not valid JSON",
            json.dumps({"task": {"type": "worker", "index": 0}}): "no 'cluster'",
            json.dumps({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}): "non-empty list",
            json.dumps({"cluster": {"worker": ["a:1"]}}): "no 'task'",
            json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}): "not a job",
            json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}): "out of range",
        }
        for tf_config, message in cases.items():
            env = {} if tf_config is None else {"TF_CONFIG": tf_config}
            with mock.patch.dict(os.environ, env, clear=False):
                if tf_config is None:
                    os.environ.pop("TF_CONFIG", None)
                with self.assertRaisesRegex(ValueError, message, msg=tf_config):
                    distribution.create_strategy("multi_worker_mirrored")

    def test_tpu_connects_initialises_and_builds_strategy(self):
        prefix = "plm_tf.training.distribution.tf."
        with mock.patch(prefix + "distribute.cluster_resolver.TPUClusterResolver") as resolver, mock.patch(
            prefix + "config.experimental_connect_to_cluster"
        ) as connect, mock.patch(prefix + "tpu.experimental.initialize_tpu_system") as initialise, mock.patch(
            prefix + "distribute.TPUStrategy"
        ) as tpu_strategy:
            strategy = distribution.create_strategy("tpu", tpu_address="grpc://10.0.0.2:8470")
        resolver.assert_called_once_with(tpu="grpc://10.0.0.2:8470")
        connect.assert_called_once_with(resolver.return_value)
        initialise.assert_called_once_with(resolver.return_value)
        tpu_strategy.assert_called_once_with(resolver.return_value)
        self.assertIs(strategy, tpu_strategy.return_value)

    def test_tpu_connection_failure_is_readable(self):
        with mock.patch(
            "plm_tf.training.distribution.tf.distribute.cluster_resolver.TPUClusterResolver",
            side_effect=ValueError("Please provide a TPU Name to connect to."),
        ):
            with self.assertRaisesRegex(distribution.StrategyError, "Could not connect to the TPU at 'my-tpu'.*TPU Name"):
                distribution.create_strategy("tpu", tpu_address="my-tpu")


class BatchTest(tf.test.TestCase):
    def test_split(self):
        self.assertEqual(
            distribution.split_batch(8192, num_replicas=8, gradient_accumulation_steps=4),
            distribution.BatchSizes(8192, 2048, 256),
        )
        self.assertEqual(distribution.split_batch(256), distribution.BatchSizes(256, 256, 256))
        self.assertEqual(distribution.split_batch(256, num_replicas=2), distribution.BatchSizes(256, 256, 128))

    def test_uneven_split_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "not divisible by num_replicas \\(3\\) x gradient_accumulation"):
            distribution.split_batch(256, num_replicas=3)
        with self.assertRaisesRegex(ValueError, "num_replicas must be >= 1"):
            distribution.split_batch(256, num_replicas=0)


class TwoDeviceTest(tf.test.TestCase):
    def test_mirrored_on_two_logical_cpus_matches_one_device(self):
        result = json.loads(run_python(MIRRORED_MATCHES_ONE_DEVICE))
        self.assertEqual(result["replicas"], 2)
        for name in ("adamw", "lamb", "adam_fairseq", "adamw_loss_scaled"):
            self.assertLess(result[name], 1e-6, msg=name)
            self.assertGreater(result[name + "_moved"], 1e-3, msg=name)

    def test_multi_worker_mirrored_from_tf_config(self):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{_free_port()}"]}, "task": {"type": "worker", "index": 0}}
        code = """
        import tensorflow as tf
        from plm_tf.training import distribution
        strategy = distribution.create_strategy("multi_worker_mirrored")
        print(isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), strategy.num_replicas_in_sync)
        """
        line = run_python(code, {"TF_CONFIG": json.dumps(tf_config)})
        self.assertEqual(line, "True 1")

    @pytest.mark.slow
    def test_two_worker_run_matches_one_device(self):
        """2 processes on 127.0.0.1: both workers end with the single-device weights."""
        script = os.path.join(self.get_temp_dir(), "worker.py")
        with open(script, "w") as f:
            f.write(MULTI_WORKER_WORKER)
        cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
        workers = []
        try:
            for index in range(2):
                tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
                workers.append(subprocess.Popen(
                    [sys.executable, script, "multi_worker_mirrored"], cwd=REPO_ROOT,
                    env=dict(env, TF_CONFIG=tf_config), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True,
                ))
            outputs = [w.communicate(timeout=TIMEOUT_SECONDS) for w in workers]
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
        for w, (_, err) in zip(workers, outputs):
            self.assertEqual(w.returncode, 0, msg=err[-3000:])
        results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        single = json.loads(run_python(f"import sys; sys.argv = ['', 'default']; exec(open({script!r}).read())"))
        self.assertEqual([r[0] for r in results], [2, 2])
        self.assertEqual(single[0], 1)
        self.assertAllEqual(results[0], results[1])
        self.assertAllClose(results[0][1:], single[1:], rtol=1e-6, atol=1e-7)


if __name__ == "__main__":
    tf.test.main()


class PeerLostTest(tf.test.TestCase):

    def _strategy(self, task_id):
        resolver = mock.Mock(task_type="worker", task_id=task_id)
        resolver.cluster_spec.return_value.as_dict.return_value = {"worker": ["a:1", "b:2"]}
        return mock.Mock(cluster_resolver=resolver)

    def test_names_the_lost_peers_not_this_worker(self):
        error = tf.errors.UnavailableError(None, None, "Collective ops is aborted by: task "
                                           "/job:worker/replica:0/task:0 failed to reach "
                                           "/job:worker/replica:0/task:1; /job:worker/replica:0/task:1 is gone")
        lost = distribution.peer_lost(self._strategy(0), error)
        self.assertIsInstance(lost, distribution.PeerLostError)
        self.assertStartsWith(str(lost), "peer lost, restart all workers: worker 0 stopped because "
                                         "/job:worker/replica:0/task:1 is gone (UnavailableError)")
        only_self = tf.errors.UnavailableError(None, None, "/job:worker/replica:0/task:1 lost its connection")
        self.assertIn("because another worker is gone", str(distribution.peer_lost(self._strategy(1), only_self)))

    def test_other_errors_and_single_process_strategies_are_not_peer_loss(self):
        self.assertIsNone(distribution.peer_lost(self._strategy(0), tf.errors.InvalidArgumentError(None, None, "x")))
        self.assertIsNone(distribution.peer_lost(tf.distribute.get_strategy(),
                                                 tf.errors.UnavailableError(None, None, "x")))
