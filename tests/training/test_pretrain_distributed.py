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
from plm_tf.training.trainer import pretrain
parse_gin(["testing/roberta_tiny.gin"], {bindings!r})
summary = pretrain({model_dir!r}, strategy={strategy!r}, print_fn=lambda line: None)
print("SUMMARY " + json.dumps(summary))
"""


def run_pretrain(model_dir, strategy, logical_cpus=1, bindings=("TRAIN_STEPS = 4",)):
    code = RUN_PRETRAIN.format(logical_cpus=logical_cpus, bindings=list(bindings), model_dir=model_dir,
                               strategy=strategy)
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


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
class MultiWorkerTest(tf.test.TestCase):
    def test_two_workers_end_with_identical_weights(self):
        workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
        model_dir = self.get_temp_dir() + "/multi"
        processes = []
        for index in range(2):
            env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                       TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
            command = ["timeout", "-k", "10", str(TIMEOUT), sys.executable, "-m", "plm_tf.train",
                       "--gin_file=testing/roberta_tiny.gin", "--gin_param=TRAIN_STEPS = 4",
                       f"--model_dir={model_dir}", "--strategy=multi_worker_mirrored"]
            processes.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
        outputs = [p.communicate(timeout=TIMEOUT + 30) for p in processes]
        for process, (stdout, stderr) in zip(processes, outputs):
            self.assertEqual(process.returncode, 0, stderr[-4000:])
        fingerprints = [
            [line.split(": ")[1] for line in stdout.splitlines() if "weights_fingerprint" in line][0]
            for stdout, _ in outputs
        ]
        self.assertEqual(fingerprints[0], fingerprints[1])
        summary = json.load(open(os.path.join(model_dir, "summary.json")))
        self.assertEqual((summary["step"], summary["replicas"]), (4, 2))
        self.assertEqual(summary["weights_fingerprint"], fingerprints[0])
        self.assertEqual(os.path.basename(tf.train.latest_checkpoint(model_dir)), "ckpt-4")

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
