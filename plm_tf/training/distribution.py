"""`tf.distribute` strategies by name, and the batch arithmetic of data-parallel training.

Names (the `--strategy` flag of `python -m plm_tf.train`):

* "default": one device, TensorFlow's default strategy (`tf.distribute.get_strategy()` outside any scope).
* "mirrored": synchronous data parallelism over the local devices: every GPU, or, without GPUs, every
  logical CPU device (one unless `tf.config.set_logical_device_configuration` split the CPU).
* "multi_worker_mirrored": `MultiWorkerMirroredStrategy`, configured by the `TF_CONFIG` environment
  variable (`{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}`).
* "tpu": `TPUStrategy` on the TPU at `tpu_address` (a name, `grpc://host:port`, or "local" on a TPU VM).

The train loop is a custom `strategy.run` loop (Keras 3's `fit` does not support
MultiWorkerMirroredStrategy); per-replica losses are summed and divided by the *global* batch size, and
`plm_tf.training.optimizers` sums gradients across replicas.
"""

import collections
import json
import os
import re

import gin
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "tpu")


class StrategyError(ValueError):
    """A strategy that cannot be created here (e.g. no TPU at the address); the message says why."""


class PeerLostError(RuntimeError):
    """A worker of a multi-worker job stopped; the survivors cannot continue (see `peer_lost`)."""


# What a collective raises on the survivors when a peer dies: TensorFlow's coordination service notices the
# missing heartbeats (measured: 19 s after a SIGKILL on 127.0.0.1) and aborts every collective with
# UnavailableError; a failed connection can also surface as FailedPrecondition (the peer restarted),
# DeadlineExceeded, Aborted or Cancelled; without the coordination service, the strategy's own health check
# aborts them with an InternalError "check alive".
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.FailedPreconditionError, tf.errors.DeadlineExceededError,
                tf.errors.AbortedError, tf.errors.CancelledError)


def peer_lost(strategy, error):
    """A `PeerLostError` if `error` (raised by a step or a save) means a peer worker of `strategy` is gone.

    Rule (as TensorFlow's MultiWorkerMirroredStrategy requires): a job whose worker died cannot continue or
    take a restarted worker back; every worker must be restarted, and they resume together from the latest
    checkpoint. Returns None for other strategies and other errors.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return None
    if not isinstance(error, _PEER_ERRORS) and not (
            isinstance(error, tf.errors.InternalError) and "check alive" in str(error)):
        return None
    # The error names tasks (often this one too, as the sender of the failed call): keep the others.
    this_task = f"/job:{resolver.task_type}/replica:0/task:{resolver.task_id}"
    unhealthy = [task for task in re.findall(r"/job:\w+/replica:\d+/task:\d+", str(error)) if task != this_task]
    return PeerLostError(
        f"peer lost, restart all workers: {resolver.task_type} {resolver.task_id} stopped because "
        f"{', '.join(sorted(set(unhealthy))) or 'another worker'} is gone ({type(error).__name__}); a "
        "restarted job resumes from the latest checkpoint, a lone restarted worker cannot rejoin.")


def any_worker(strategy, flag):
    """True on every worker if `flag` is True on any of them (one small all-reduce under multi-worker).

    Every worker must call it at the same point of its loop; other strategies return `flag`.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return bool(flag)
    votes = strategy.run(lambda: tf.constant(1 if flag else 0, tf.int32))
    return int(strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)) > 0


InputLayout = collections.namedtuple("InputLayout", ["num_pipelines", "pipeline_id", "local_replicas"])
InputLayout.__doc__ = """How input is read under a strategy (`plm_tf.data.sharding`).

num_pipelines: N, the input pipelines of the job: one per worker under "multi_worker_mirrored", one per host
    under "tpu", else 1.
pipeline_id: this process's pipeline (its worker's index in the cluster; 0 for "tpu", whose hosts are fed by
    `distribute_datasets_from_function`).
local_replicas: L, the replicas one pipeline feeds (num_replicas_in_sync / N).
"""


def input_layout(strategy):
    """The `InputLayout` of `strategy`."""
    replicas = strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        resolver = strategy.cluster_resolver
        cluster = resolver.cluster_spec().as_dict()
        chiefs = len(cluster.get("chief", []))
        workers = chiefs + len(cluster.get("worker", []))
        pipeline = 0 if resolver.task_type == "chief" else chiefs + int(resolver.task_id)
        return InputLayout(workers, pipeline, replicas // workers)
    if isinstance(strategy, tf.distribute.TPUStrategy):
        hosts = strategy.extended.num_hosts
        return InputLayout(hosts, 0, replicas // hosts)
    return InputLayout(1, 0, replicas)


def input_context(strategy):
    """The `tf.distribute.InputContext` of this process's input pipeline under `strategy`."""
    layout = input_layout(strategy)
    return tf.distribute.InputContext(num_input_pipelines=layout.num_pipelines,
                                      input_pipeline_id=layout.pipeline_id,
                                      num_replicas_in_sync=strategy.num_replicas_in_sync)


def uses_distributed_input(strategy):
    """True for "tpu": its hosts read input through `strategy.distribute_datasets_from_function`, one
    pipeline per host; the other strategies feed their local replicas from a plain (checkpointable) iterator."""
    return isinstance(strategy, tf.distribute.TPUStrategy)


BatchSizes = collections.namedtuple(
    "BatchSizes", ["global_batch_size", "micro_batch_size", "per_replica_batch_size"]
)
BatchSizes.__doc__ = """Batch sizes of one optimizer update.

global_batch_size: examples per update (the recipe's batch, e.g. RoBERTa's 8K).
micro_batch_size: examples per forward/backward pass over all replicas (global / accumulation steps).
per_replica_batch_size: examples per replica per pass (micro / replicas) -- what each device holds.
"""


def split_batch(global_batch_size, num_replicas=1, gradient_accumulation_steps=1):
    """Splits a global batch over gradient-accumulation steps and replicas.

    Args:
        global_batch_size: examples per optimizer update.
        num_replicas: `strategy.num_replicas_in_sync`.
        gradient_accumulation_steps: micro-batches per update.

    Returns:
        `BatchSizes`.

    Raises:
        ValueError: if the global batch does not divide evenly (a remainder would silently change the
            effective batch or the loss scaling).

    Example:
        >>> split_batch(8192, num_replicas=8, gradient_accumulation_steps=4)
        BatchSizes(global_batch_size=8192, micro_batch_size=2048, per_replica_batch_size=256)
    """
    for label, value in (
        ("global_batch_size", global_batch_size),
        ("num_replicas", num_replicas),
        ("gradient_accumulation_steps", gradient_accumulation_steps),
    ):
        if value < 1:
            raise ValueError(f"{label} must be >= 1, got {value}.")
    divisor = num_replicas * gradient_accumulation_steps
    if global_batch_size % divisor:
        raise ValueError(
            f"global_batch_size {global_batch_size} is not divisible by num_replicas ({num_replicas}) x "
            f"gradient_accumulation_steps ({gradient_accumulation_steps}) = {divisor}."
        )
    micro = global_batch_size // gradient_accumulation_steps
    return BatchSizes(global_batch_size, micro, micro // num_replicas)


def _read_tf_config():
    """Parses and checks TF_CONFIG; returns the dict. Raises ValueError naming what is wrong."""
    raw = os.environ.get("TF_CONFIG")
    example = (
        '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
    )
    if not raw:
        raise ValueError(f"multi_worker_mirrored needs the TF_CONFIG environment variable, e.g. {example}")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}); expected e.g. {example}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError(f"TF_CONFIG has no 'cluster' mapping; expected e.g. {example}")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise ValueError(f"TF_CONFIG cluster[{job!r}] must be a non-empty list of 'host:port' strings.")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(f"TF_CONFIG has no 'task' with 'type' and 'index'; expected e.g. {example}")
    if task["type"] not in cluster:
        raise ValueError(f"TF_CONFIG task type {task['type']!r} is not a job of the cluster {sorted(cluster)}.")
    index = task["index"]
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ValueError(
            f"TF_CONFIG task index {index!r} is out of range for the {len(cluster[task['type']])} "
            f"{task['type']!r} addresses."
        )
    return config


def _local_devices():
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


@gin.configurable
def create_strategy(name="default", tpu_address=None):
    """Creates the `tf.distribute.Strategy` called `name`.

    Args:
        name: one of `STRATEGIES`.
        tpu_address: for "tpu": the TPU name or `grpc://host:port` ("local" on a TPU VM; None lets
            `TPUClusterResolver` read `TPU_NAME`). Rejected for other strategies.

    Returns:
        The strategy; create models and optimizers inside `strategy.scope()`.

    Raises:
        ValueError: unknown name, `tpu_address` without "tpu", missing or malformed TF_CONFIG.
        StrategyError: the TPU could not be reached or initialised (the original error is chained).
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {list(STRATEGIES)}.")
    if tpu_address is not None and name != "tpu":
        raise ValueError(f"tpu_address is only used by the 'tpu' strategy, not {name!r}.")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=_local_devices())
    if name == "multi_worker_mirrored":
        _read_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise StrategyError(f"Could not connect to the TPU at {tpu_address!r}: {error}") from error
    return tf.distribute.TPUStrategy(resolver)
