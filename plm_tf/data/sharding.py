"""Input shards: how a pretraining stream is split between input pipelines (workers, TPU hosts).

Without sharding every worker of a multi-worker run would build the whole global stream and keep only its
replicas' batches, so the input work per host would grow with the number of hosts. Instead the stream is
defined by a fixed number of *input shards* S (`pretrain.input_shards`, by default the number of input
pipelines N), and each pipeline builds only its own shards:

* Shard s reads the files `files[s::S]` when there are at least S files; otherwise it reads every line but
  keeps only the documents d ≡ s (mod S) of the epoch's document stream (`select_shard_documents`), so it
  tokenizes, packs and masks only its share (reading and splitting lines is the part every pipeline repeats).
* Shard s draws its example construction, masks and shuffling from `shard_seed(seed, s)` — for S = 1 that is
  `seed` itself, so an unsharded stream is unchanged.
* Each shard is shuffled on its own and cut into chunks of B / S examples (B = the global micro-batch).
* Global micro-batch k is the concatenation, in shard order, of chunk k of every shard. Pipeline p of N owns
  the S / N consecutive shards p·S/N … (p+1)·S/N − 1, so it yields rows [p·B/N, (p+1)·B/N) of every global
  micro-batch, split into its L = R / N replicas' batches of B / R rows (replica r = p·L + l).

So for a fixed S, any N dividing S gives every update the same examples in the same replica order: N workers
together do the work of one stream, and 1, 2 or 4 workers (or one device) train on identical batches.

`plan` checks the arithmetic; `combine` assembles a pipeline's batches from its shards' chunk datasets.
"""
import collections

import tensorflow as tf

# Added per shard to the run seed (shard 0 keeps it): the shards' stateless draws never share a seed.
_SHARD_SEED_STRIDE = 2**32


class ShardingError(ValueError):
    """Input shards, pipelines, replicas and batch size that do not divide evenly; the message says which."""


ShardPlan = collections.namedtuple("ShardPlan", ["num_shards", "shards", "chunk_size", "per_replica_batch_size"])
ShardPlan.__doc__ = """Which shards one input pipeline builds and how it batches them.

num_shards: S, the input shards of the whole stream.
shards: the shard indices this pipeline owns (S / N consecutive ones).
chunk_size: examples per shard per global micro-batch (B / S).
per_replica_batch_size: examples per replica batch (B / R).
"""


def plan(global_batch_size, num_shards=None, input_context=None):
    """The `ShardPlan` of one pipeline.

    Args:
      global_batch_size: B, examples per global micro-batch (over every replica).
      num_shards: S; None = the number of input pipelines.
      input_context: a `tf.distribute.InputContext` (num_input_pipelines, input_pipeline_id,
        num_replicas_in_sync) or None (one pipeline, one replica).
    Raises:
      ShardingError: S not a multiple of N, B not a multiple of S or of the replica count.
    """
    pipelines = input_context.num_input_pipelines if input_context is not None else 1
    pipeline_id = input_context.input_pipeline_id if input_context is not None else 0
    replicas = input_context.num_replicas_in_sync if input_context is not None else 1
    shards = pipelines if num_shards is None else num_shards
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise ShardingError(f"input_shards must be a positive integer, got {num_shards!r}")
    if shards % pipelines:
        raise ShardingError(f"input_shards={shards} cannot be split between {pipelines} input pipelines (workers); "
                            "use a multiple of the number of workers")
    if replicas % pipelines:
        raise ShardingError(f"{replicas} replicas cannot be split evenly between {pipelines} input pipelines")
    for divisor, what in ((shards, f"input_shards={shards}"), (replicas, f"{replicas} replicas")):
        if global_batch_size % divisor:
            raise ShardingError(f"the global batch of {global_batch_size} examples cannot be split between {what}")
    per_pipeline = shards // pipelines
    return ShardPlan(shards, tuple(range(pipeline_id * per_pipeline, (pipeline_id + 1) * per_pipeline)),
                     global_batch_size // shards, global_batch_size // replicas)


def shard_seed(seed, shard):
    """The seed of shard `shard`'s stateless draws (construction, masks, shuffling); `seed` for shard 0."""
    return seed + shard * _SHARD_SEED_STRIDE


def shard_files(files, shard, num_shards):
    """The files shard `shard` reads when splitting by files (`files[shard::num_shards]`), else None."""
    if num_shards > 1 and len(files) >= num_shards:
        return list(files[shard::num_shards])
    return None


def select_shard_documents(lines, shard, num_shards, block_lines=1024):
    """Keeps the lines of the documents d ≡ shard (mod num_shards) of a line dataset (tf.string []).

    Documents are numbered in stream order; a document is the non-blank lines up to a blank line (the corpus
    layout, `plm_tf.data.corpus`). Blank lines are always kept: they only end documents. Vectorised: a `scan`
    over blocks of `block_lines` lines (its state: whether the previous line was inside a document, and the
    last document number), so the per-line cost is a few tensor ops, not a function call per line; it is
    checkpointable like the rest of the pipeline.
    """
    if num_shards == 1:
        return lines

    def step(state, block):
        in_document, document = state
        blank = tf.equal(tf.strings.length(tf.strings.strip(block)), 0)
        previous_in_document = tf.concat([[in_document], tf.logical_not(blank)[:-1]], axis=0)
        starts = tf.logical_and(tf.logical_not(blank), tf.logical_not(previous_in_document))
        numbers = document + tf.cumsum(tf.cast(starts, tf.int64))
        keep = tf.logical_or(blank, tf.equal(tf.math.floormod(numbers, num_shards), shard))
        return (tf.logical_not(blank[-1]), numbers[-1]), tf.boolean_mask(block, keep)

    # The document number starts at -1: the first document is number 0.
    start = (tf.constant(False), tf.constant(-1, tf.int64))
    return lines.batch(block_lines).scan(start, step).unbatch()


def combine(plan, shard_chunks):
    """One pipeline's per-replica batches: `shard_chunks(s)` is shard s's dataset of chunks (batched to
    `plan.chunk_size`), for each shard of `plan`.

    Chunk k of every shard are concatenated in shard order (the pipeline's rows of global micro-batch k), then
    cut into batches of `plan.per_replica_batch_size` rows, consecutive per replica; prefetched.
    """
    chunk_datasets = [shard_chunks(shard) for shard in plan.shards]
    if len(chunk_datasets) == 1:
        ds = chunk_datasets[0]
    else:
        def concatenate(*chunks):
            return tf.nest.map_structure(lambda *parts: tf.concat(parts, axis=0), *chunks)

        ds = tf.data.Dataset.zip(tuple(chunk_datasets)).map(concatenate)
    if plan.chunk_size * len(plan.shards) != plan.per_replica_batch_size:
        ds = ds.rebatch(plan.per_replica_batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)
