"""Shared pieces of the export tests: tiny models from the test gin files, trainer-style checkpoints, subprocesses."""
import os
import subprocess
import sys

import gin
import tensorflow as tf

from plm_tf.export.exporter import build_from_gin

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_GIN = {"electra": "testing/electra_tiny.gin", "mlm": "testing/roberta_tiny.gin",
            "mlm_sop": "testing/albert_tiny.gin", "mlm_nsp": "testing/bert_tiny.gin"}


def tiny_model(objective, seed=0):
    """(model, tokenizer) of the tiny config of `objective`, randomly initialised with a fixed seed."""
    import keras

    keras.utils.set_random_seed(seed)
    return build_from_gin([TINY_GIN[objective]])


def write_trainer_checkpoint(model, model_dir, step=1):
    """Writes `model` as `python -m plm_tf.train` does: model_dir/ckpt-<step>, a `checkpoint` state file and the
    operative gin config (with the resolved vocab_size). Returns the checkpoint path."""
    os.makedirs(model_dir, exist_ok=True)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), model_dir, max_to_keep=2)
    path = manager.save(checkpoint_number=step)
    with open(os.path.join(model_dir, "operative_config.gin"), "w") as f:
        f.write(gin.config_str())
    return path


def run_python(args, timeout=240):
    """Runs `python <args>` from the repository root; returns the CompletedProcess (text output)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable] + list(args), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
