"""The trainer under tf.distribute: MirroredStrategy on 2 logical CPUs equals one device on the same global
batch, and a 2-process MultiWorkerMirroredStrategy run on 127.0.0.1 ends with identical weights on both
workers. Every run is a subprocess (logical-device setup must precede TensorFlow's initialisation)."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from testing_utils import REPO_ROOT

TIMEOUT = 400

RUN_PRETRAIN = """
import json, sys
import tensorflow as tf
if {logical_cpus} > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * {logical_cpus})
from plm_tf.gin_config import parse_gin
from plm_tf.training import distribution
from plm_tf.training.trainer import pretrain
if {distributed_input}:  # the TPU hosts' input path (distribute_datasets_from_function), here on 2 CPU replicas
    distribution.uses_distributed_input = lambda strategy: True
parse_gin(["testing/roberta_tiny.gin"], {bindings!r})
summary = pretrain({model_dir!r}, strategy={strategy!r}, print_fn=lambda line: None)
print("SUMMARY " + json.dumps(summary))
"""


def run_pretrain(model_dir, strategy, logical_cpus=1, bindings=("TRAIN_STEPS = 4",), distributed_input=False):
    code = RUN_PRETRAIN.format(logical_cpus=logical_cpus, bindings=list(bindings), model_dir=model_dir,
                               strategy=strategy, distributed_input=distributed_input)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        raise AssertionError(f"pretrain failed:\n{result.stderr[-4000:]}")
    line = [l for l in result.stdout.splitlines() if l.startswith("SUMMARY ")][-1]
    return json.loads(line[len("SUMMARY "):])


def model_weights(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.startswith("model/") and "OPTIMIZER_SLOT" not in k}


class MirroredTest(tf.test.TestCase):
    def test_two_replicas_match_one_device_on_the_same_global_batch(self):
        one = run_pretrain(self.get_temp_dir() + "/one", "default")
        two = run_pretrain(self.get_temp_dir() + "/two", "mirrored", logical_cpus=2)
        self.assertEqual((one["replicas"], two["replicas"]), (1, 2))
        self.assertAllClose(one["final_losses"]["mlm"], two["final_losses"]["mlm"], rtol=1e-5)
        expected, actual = model_weights(one["latest_checkpoint"]), model_weights(two["latest_checkpoint"])
        self.assertEqual(sorted(expected), sorted(actual))
        for key in expected:
            self.assertAllClose(actual[key], expected[key], atol=2e-6, msg=key)

    def test_mirrored_with_dropout_and_gradient_accumulation(self):
        summary = run_pretrain(
            self.get_temp_dir() + "/dropout", "mirrored", logical_cpus=2,
            bindings=("TRAIN_STEPS = 4", "pretrain.train_steps = 2", "encoder_config.dropout_rate = 0.1",
                      "create_optimizer.gradient_accumulation_steps = 2"),
        )
        self.assertEqual(summary["step"], 2)
        self.assertTrue(np.isfinite(summary["final_losses"]["loss"]))


@pytest.mark.slow
class DistributedInputTest(tf.test.TestCase):
    def test_distributed_datasets_train_and_resume_like_the_local_iterator(self):
        """The TPU hosts' path: `distribute_datasets_from_function` with an InputContext, per-replica batches
        from the same pipeline function, and a resume that skips the batches already trained on."""
        local = run_pretrain(self.get_temp_dir() + "/local", "mirrored", logical_cpus=2)
        distributed = run_pretrain(self.get_temp_dir() + "/distributed", "mirrored", logical_cpus=2,
                                   distributed_input=True)
        self.assertEqual(distributed["weights_fingerprint"], local["weights_fingerprint"])
        resumed_dir = self.get_temp_dir() + "/resumed"
        first = run_pretrain(resumed_dir, "mirrored", logical_cpus=2, distributed_input=True,
                             bindings=("TRAIN_STEPS = 4", "pretrain.train_steps = 2"))
        self.assertEqual(first["step"], 2)
        resumed = run_pretrain(resumed_dir, "mirrored", logical_cpus=2, distributed_input=True)
        self.assertEqual(resumed["step"], 4)
        self.assertEqual(resumed["weights_fingerprint"], local["weights_fingerprint"])


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(model_dir, bindings=("TRAIN_STEPS = 4",), count=2):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(count)]
    processes = []
    for index in range(count):
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                   TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        command = ["timeout", "-k", "10", str(TIMEOUT), sys.executable, "-m", "plm_tf.train",
                   "--gin_file=testing/roberta_tiny.gin", *[f"--gin_param={b}" for b in bindings],
                   f"--model_dir={model_dir}", "--strategy=multi_worker_mirrored"]
        processes.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, start_new_session=True))
    return processes


def kill_all(processes):
    """SIGKILL to every worker's process group (`timeout` and the Python process under it)."""
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()


def finish(processes):
    """Waits for every worker; AssertionError with its stderr if one failed. Returns [(stdout, stderr)]."""
    outputs = [p.communicate(timeout=TIMEOUT + 30) for p in processes]
    for process, (stdout, stderr) in zip(processes, outputs):
        if process.returncode != 0:
            raise AssertionError(f"worker failed ({process.returncode}):\n{stderr[-4000:]}")
    return outputs


def fingerprint_of(stdout):
    return [line.split(": ")[1] for line in stdout.splitlines() if "weights_fingerprint" in line][0]


@pytest.mark.slow
class MultiWorkerTest(tf.test.TestCase):
    def test_two_workers_equal_one_device_and_resume_exactly_after_both_are_killed(self):
        """input_shards = 2: one device and 2 workers (each building only its shard) train on the same batches
        (dropout off); both workers keep their own input position, so killing both and restarting ends with the
        weights of an uninterrupted run."""
        bindings = ["TRAIN_STEPS = 12", "pretrain.input_shards = 2", "pretrain.steps_per_loop = 1",
                    "pretrain.checkpoint_every = 2"]
        one = run_pretrain(self.get_temp_dir() + "/one", "default", bindings=bindings)
        model_dir = self.get_temp_dir() + "/two"
        outputs = finish(start_workers(model_dir, bindings))
        fingerprints = [fingerprint_of(stdout) for stdout, _ in outputs]
        self.assertEqual(fingerprints[0], fingerprints[1])
        summary = json.load(open(os.path.join(model_dir, "summary.json")))
        self.assertEqual((summary["step"], summary["replicas"], summary["input_pipelines"]), (12, 2, 2))
        self.assertEqual(summary["weights_fingerprint"], fingerprints[0])
        expected, actual = model_weights(one["latest_checkpoint"]), model_weights(summary["latest_checkpoint"])
        self.assertEqual(sorted(expected), sorted(actual))
        for key in expected:
            self.assertAllClose(actual[key], expected[key], atol=2e-6, msg=key)
        for pipeline in range(2):  # each worker's own position, for every kept checkpoint
            self.assertTrue(os.path.exists(os.path.join(model_dir, "input", f"pipeline-{pipeline}", "ckpt-12.index")))

        killed_dir = self.get_temp_dir() + "/killed"
        processes = start_workers(killed_dir, bindings)
        try:
            deadline = time.time() + TIMEOUT
            while tf.train.latest_checkpoint(killed_dir) is None and time.time() < deadline:
                time.sleep(0.05)
        finally:
            kill_all(processes)
        killed_at = int(tf.train.latest_checkpoint(killed_dir).rsplit("-", 1)[1])
        self.assertLess(killed_at, 12)
        outputs = finish(start_workers(killed_dir, bindings))
        for stdout, _ in outputs:
            self.assertIn(f"at step {killed_at}.", stdout)
            self.assertEqual(fingerprint_of(stdout), fingerprints[0])

        with self.assertRaises(AssertionError) as failed:  # another worker count cannot resume this run
            run_pretrain(model_dir, "default", bindings=bindings[:1] + ["TRAIN_STEPS = 14"] + bindings[2:])
        self.assertIn("was started with 2 input pipeline(s)", str(failed.exception))

    def test_sigterm_to_one_worker_then_peer_loss(self):
        """1. SIGTERM to worker 1 only: both workers save the same step and exit 0 (TensorFlow's own SIGTERM
        handler used to swallow it: the job trained on). 2. The restarted job resumes from that step; SIGKILL
        worker 1: worker 0 stops (coordination-service heartbeat, ~20 s) with one line telling to restart all
        workers and status 1 (not 0, so a scheduler restarts the job; not 2, which means bad configuration)."""
        model_dir = self.get_temp_dir() + "/preempted_then_peer_lost"

        def start_workers():
            workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
            processes = []
            for index in range(2):
                env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                           TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                 "task": {"type": "worker", "index": index}}))
                command = [sys.executable, "-m", "plm_tf.train", "--gin_file=testing/roberta_tiny.gin",
                           "--gin_param=TRAIN_STEPS = 100000", f"--model_dir={model_dir}",
                           "--strategy=multi_worker_mirrored"]
                processes.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                                  stderr=subprocess.PIPE, text=True))
            return processes

        def wait_for_checkpoint(after=None):
            deadline = time.time() + TIMEOUT
            while tf.train.latest_checkpoint(model_dir) in (None, after) and time.time() < deadline:
                time.sleep(0.5)
            return tf.train.latest_checkpoint(model_dir)

        processes = start_workers()
        try:
            wait_for_checkpoint()
            processes[1].send_signal(signal.SIGTERM)
            outputs = [process.communicate(timeout=TIMEOUT) for process in processes]  # bounded: a hang fails
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait()
        for process, (stdout, stderr) in zip(processes, outputs):
            self.assertEqual(process.returncode, 0, stderr[-4000:])
        saved = [[line for line in stdout.splitlines() if line.startswith("Preempted")] for stdout, _ in outputs]
        self.assertStartsWith(saved[1][0], "Preempted (SIGTERM): saved step ")
        self.assertStartsWith(saved[0][0], "Preempted (SIGTERM to another worker): saved step ")
        step = int(saved[1][0].split("saved step ")[1].split()[0])
        self.assertIn(f"saved step {step} ", saved[0][0])
        self.assertEqual(tf.train.latest_checkpoint(model_dir), os.path.join(model_dir, f"ckpt-{step}"))

        processes = start_workers()
        try:
            wait_for_checkpoint(after=os.path.join(model_dir, f"ckpt-{step}"))
            processes[1].kill()
            processes[1].wait()
            stdout, stderr = processes[0].communicate(timeout=TIMEOUT)  # bounded: a hang fails the test
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait()
        self.assertIn(f"Resuming from {os.path.join(model_dir, f'ckpt-{step}')} at step {step}.", stdout)
        self.assertEqual(processes[0].returncode, 1, stderr[-4000:])
        errors = [line for line in stderr.splitlines() if line.startswith("plm_tf.train: error:")]
        self.assertLen(errors, 1)
        self.assertIn("peer lost, restart all workers: worker 0 stopped because /job:worker/replica:0/task:1 is "
                      "gone", errors[0])
        self.assertNotIn("Traceback", stderr)


if __name__ == "__main__":
    tf.test.main()
