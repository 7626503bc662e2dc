"""The distributed pretraining step: forward, globally normalised loss, backward, update.

Runs under any `tf.distribute` strategy (custom loop, since Keras 3 `fit` does not support
MultiWorkerMirroredStrategy). Each replica divides its loss numerators by denominators all-reduced over the
replicas (`plm_tf.models.objectives`), so the summed gradient equals the single-device gradient of the global
batch; the optimizers in `plm_tf.training.optimizers` sum gradients over replicas.
"""
import tensorflow as tf

from plm_tf.models import objectives
from plm_tf.models.pretraining import ElectraPretrainer
from plm_tf.training import precision


def _sampling_seed(run_seed, step, replica_context):
    """ELECTRA's Gumbel-noise seed: a function of (run seed, step, replica), so a resumed run draws the same."""
    replica = tf.cast(replica_context.replica_id_in_sync_group, tf.int64)
    stream = tf.cast(step, tf.int64) * replica_context.num_replicas_in_sync + replica
    return tf.stack([tf.cast(run_seed, tf.int64), stream])


def replica_step(model, optimizer, objective, batch, step, run_seed):
    """One micro-batch on one replica: returns (total loss share, {loss name: share}, metric sums)."""
    context = tf.distribute.get_replica_context()
    with tf.GradientTape() as tape:
        if isinstance(model, ElectraPretrainer):
            outputs = model(batch, training=True, sampling_seed=_sampling_seed(run_seed, step, context))
        else:
            outputs = model(batch, training=True)
        terms, sums = objectives.loss_terms(objective, batch, outputs)
        local_denominators = {name: denominator for name, (_, denominator) in terms.items()}
        global_denominators = context.all_reduce(tf.distribute.ReduceOp.SUM, local_denominators)
        loss, losses = objectives.total_loss(terms, global_denominators)
        scaled = precision.scale_loss(optimizer, loss)
    gradients = tape.gradient(scaled, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return loss, losses, sums


def make_train_loop(strategy, model, optimizer, objective, run_seed, micro_steps_per_update, input_layout=None,
                    distributed_input=False):
    """A tf.function running `num_updates` optimizer updates (each of `micro_steps_per_update` micro-batches).

    Input (`plm_tf.data.sharding`): by default `iterator` is this worker's plain (checkpointable) tf.data
    iterator of *per-replica* batches of its input pipeline; each micro-batch takes `input_layout.local_replicas`
    consecutive batches and gives the pipeline's l-th replica (replica p·L + l) the l-th. With
    `distributed_input` (TPU hosts), `iterator` iterates `strategy.distribute_datasets_from_function` and each
    `next` is already the per-replica batch.

    Returns a function (iterator, num_updates int32 scalar, first_step int64) → (mean loss, {loss: mean},
    metric sums), everything summed over replicas and averaged (losses) or summed (metric sums) over the
    micro-batches it ran.
    """

    local_replicas = input_layout.local_replicas if input_layout else strategy.num_replicas_in_sync
    first_replica = input_layout.pipeline_id * local_replicas if input_layout else 0

    def one_micro_batch(iterator, step):
        if distributed_input:
            batch = next(iterator)
        else:
            batches = [next(iterator) for _ in range(local_replicas)]
            batch = strategy.experimental_distribute_values_from_function(
                lambda context: batches[context.replica_id_in_sync_group - first_replica]
            )
        per_replica = strategy.run(replica_step, args=(model, optimizer, objective, batch, step, run_seed))
        return tf.nest.map_structure(
            lambda value: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None), per_replica
        )

    @tf.function
    def train_loop(iterator, num_updates, first_step):
        micro_batches = num_updates * micro_steps_per_update
        loss, losses, sums = one_micro_batch(iterator, first_step * micro_steps_per_update)
        for micro_step in tf.range(1, micro_batches):
            step_loss, step_losses, step_sums = one_micro_batch(
                iterator, first_step * micro_steps_per_update + tf.cast(micro_step, tf.int64)
            )
            loss += step_loss
            losses = tf.nest.map_structure(tf.add, losses, step_losses)
            sums = tf.nest.map_structure(tf.add, sums, step_sums)
        count = tf.cast(micro_batches, tf.float32)
        return loss / count, {name: value / count for name, value in losses.items()}, sums

    return train_loop
