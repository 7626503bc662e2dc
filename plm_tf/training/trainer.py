"""The gin-configured pretraining run behind `python -m plm_tf.train`.

One function, `pretrain`, wires the pieces in data-flow order: precision policy → strategy → tokenizer →
model and optimizer (in the strategy scope) → distributed tf.data pipeline → checkpoint restore → a loop of
`steps_per_loop`-update tf.function calls with progress lines, TensorBoard summaries, periodic checkpoints
and SIGTERM handling → final checkpoint, export, summary and model card (`model_dir/README.md`).
"""
import hashlib
import json
import os
import time

import gin
import keras
import numpy as np
import tensorflow as tf

from plm_tf import model_card
from plm_tf.data import corpus, pipelines
from plm_tf.evaluation import curves, evaluator as evaluation
from plm_tf.evaluation.reporting import EvalReporter
from plm_tf.models import objectives
from plm_tf.models.builders import build_pretraining_model
from plm_tf.models.configs import bind_vocab_size
from plm_tf.training import checkpointing, distribution, precision
from plm_tf.training.input_positions import InputPositions
from plm_tf.training.optimizers import create_optimizer
from plm_tf.training.progress import ProgressReporter, format_duration
from plm_tf.training.train_step import make_train_loop


class TrainingError(ValueError):
    """A run that cannot start as configured; the message says what to change."""


def _dropout_rng_state(model):
    """A trackable holding every Dropout layer's Keras SeedGenerator state, so that a resumed run continues
    the same dropout masks as an uninterrupted one (the model checkpoint alone does not include them)."""
    holder = tf.Module()
    holder.states = [
        layer.seed_generator.state
        for layer in model._flatten_layers(include_self=False)
        if getattr(layer, "seed_generator", None) is not None
    ]
    return holder


def weights_fingerprint(model):
    """MD5 of every trainable weight's bytes, in a fixed order: equal across workers and reruns iff the
    weights are bit-identical."""
    digest = hashlib.md5()
    for variable in sorted(model.trainable_variables, key=lambda v: v.path):
        digest.update(np.asarray(variable.numpy(), np.float32).tobytes())
    return digest.hexdigest()


def _sum_into(total, update):
    for name, value in update.items():
        value = np.asarray(value)
        total[name] = total[name] + value if name in total else value
    return total


@gin.configurable(denylist=["model_dir", "strategy", "tpu_address"])
def pretrain(
    model_dir,
    objective=gin.REQUIRED,
    train_steps=gin.REQUIRED,
    batch_size=gin.REQUIRED,
    seq_len=gin.REQUIRED,
    corpus_paths=None,
    tokenizer_kind=None,
    vocab_path=None,
    steps_per_loop=50,
    log_every=50,
    checkpoint_every=500,
    keep_checkpoints=5,
    precision_policy="float32",
    strategy="default",
    tpu_address=None,
    seed=0,
    export=True,
    eval_corpus_paths=None,
    eval_every=0,
    eval_batches=8,
    input_shards=None,
    print_fn=print,
):
    """Pretrains `objective` and returns a summary dict (also written to `model_dir/summary.json`).

    Args:
        model_dir: checkpoints (`ckpt-<step>`), TensorBoard logs (`train/`), the operative gin config and the
            summary go here. A run restarted with the same model_dir resumes from its latest checkpoint.
        objective: "mlm" (RoBERTa), "mlm_nsp" (BERT), "mlm_sop" (ALBERT) or "electra".
        train_steps: optimizer updates in the whole run.
        batch_size: examples per update (global, over replicas and gradient-accumulation micro-batches).
        seq_len: tokens per example.
        corpus_paths: corpus files/folders/globs; None uses the embedded default corpus.
        tokenizer_kind: "wordpiece" / "sentencepiece" / "bpe"; None uses the objective's default.
        vocab_path: vocabulary for that tokenizer; None uses the embedded default.
        steps_per_loop: updates per tf.function call (fewer Python round trips).
        log_every: updates between progress lines / summaries (a multiple of steps_per_loop is best).
        checkpoint_every: updates between checkpoints.
        keep_checkpoints: checkpoints kept on disk.
        precision_policy: "float32", "mixed_bfloat16" (CPU/TPU) or "mixed_float16" (GPU, with loss scaling).
        strategy: "default", "mirrored", "multi_worker_mirrored" or "tpu".
        tpu_address: TPU name or grpc address for strategy="tpu".
        seed: root of every random draw (weight initialisation, dropout, data order, masks, ELECTRA samples);
            the dropout streams are checkpointed, so a killed and resumed run reproduces an uninterrupted one.
        export: at the end of the run, write the serving SavedModel (raw-text signatures, see
            `plm_tf.export`) of the kept model — ELECTRA's discriminator, otherwise the encoder and its MLM
            head — to `model_dir/export`.
        eval_corpus_paths: corpus to evaluate on; None evaluates on the held-out documents of the training
            corpus (`plm_tf.data.heldout`, ~1 in 20), which the training stream then leaves out.
        eval_every: updates between evaluations (`plm_tf.evaluation.evaluator`: fixed seeded batches, dropout
            off; also at the first and last step); 0 = no evaluation and training on every document.
        eval_batches: batches of `batch_size` examples per evaluation.
        input_shards: S, the shares the input stream is split into (`plm_tf.data.sharding`); each input
            pipeline (worker, TPU host) builds only its S / N shards. None = the number of pipelines. With a fixed
            S, 1, 2, ... S workers (any divisor) train on the same batches. A run resumes with the same
            workers and S it started with (recorded in `model_dir/input_layout.json`).
        print_fn: where progress lines go.
    """
    if objective not in pipelines.DEFAULT_TOKENIZER:
        raise TrainingError(f"Unknown objective {objective!r}; choose one of {sorted(pipelines.DEFAULT_TOKENIZER)}.")
    for name, value in (("train_steps", train_steps), ("batch_size", batch_size), ("seq_len", seq_len),
                        ("steps_per_loop", steps_per_loop), ("log_every", log_every),
                        ("checkpoint_every", checkpoint_every), ("keep_checkpoints", keep_checkpoints),
                        ("eval_batches", eval_batches), ("eval_every", eval_every or 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TrainingError(f"pretrain.{name} must be a positive integer, got {value!r}.")
    with checkpointing.install_preemption_handler() as handler:
        return _pretrain(handler, model_dir, objective, train_steps, batch_size, seq_len, corpus_paths,
                         tokenizer_kind, vocab_path, steps_per_loop, log_every, checkpoint_every, keep_checkpoints,
                         precision_policy, strategy, tpu_address, seed, export, eval_corpus_paths, eval_every,
                         eval_batches, input_shards, print_fn)


def _pretrain(handler, model_dir, objective, train_steps, batch_size, seq_len, corpus_paths, tokenizer_kind,
              vocab_path, steps_per_loop, log_every, checkpoint_every, keep_checkpoints, precision_policy, strategy,
              tpu_address, seed, export, eval_corpus_paths, eval_every, eval_batches, input_shards, print_fn):
    """`pretrain` with its SIGTERM handler installed (a signal at any moment from here on is a clean stop)."""
    evaluate_heldout = bool(eval_every) and eval_corpus_paths is None
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)  # weight initialisation and the dropout streams
    precision.set_precision(precision_policy)
    strategy_obj = distribution.create_strategy(strategy, tpu_address)
    handler.reinstall()  # MultiWorkerMirroredStrategy replaces the SIGTERM handler with its own
    tokenizer = pipelines.load_tokenizer(tokenizer_kind or pipelines.DEFAULT_TOKENIZER[objective], vocab_path)
    bind_vocab_size(tokenizer)
    is_chief = checkpointing.is_chief(strategy_obj)
    if is_chief:
        check_writable(model_dir)
    corpus_stats = _corpus_stats(corpus_paths, model_dir, is_chief)
    if corpus_stats is not None and corpus_stats.invalid_utf8_lines:
        print_fn(f"Skipping {corpus_stats.invalid_utf8_lines} corpus line(s) that are not UTF-8 "
                 f"(first: {corpus_stats.first_invalid}).")

    with strategy_obj.scope():
        model = build_pretraining_model(objective=objective)
        model.build()
        optimizer = precision.wrap_optimizer(create_optimizer())
        optimizer.build(model.trainable_variables)
    accumulation = int(getattr(optimizer, "gradient_accumulation_steps", None) or 1)
    batches = distribution.split_batch(batch_size, strategy_obj.num_replicas_in_sync, accumulation)

    # Each input pipeline (one per worker, or per TPU host) builds only its shards of the stream
    # (plm_tf.data.sharding). One pipeline: its iterator is part of the checkpoint. Several workers: each saves its
    # own position beside it (InputPositions). TPU hosts: distributed datasets, which TensorFlow cannot
    # checkpoint, resume by skipping the batches already trained on.
    layout = distribution.input_layout(strategy_obj)
    shards = _input_shards(model_dir, input_shards, layout, is_chief)
    distributed_input = distribution.uses_distributed_input(strategy_obj)

    def input_dataset(input_context):
        return pipelines.pretraining_dataset(
            objective=objective, corpus_paths=corpus_paths, tokenizer_kind=tokenizer.kind, vocab_path=vocab_path,
            seq_len=seq_len, batch_size=batches.micro_batch_size, seed=seed, input_context=input_context,
            input_shards=shards, documents="train" if evaluate_heldout else "all",
        )

    iterator = positions = None
    if not distributed_input:
        iterator = iter(input_dataset(distribution.input_context(strategy_obj)))
        if layout.num_pipelines > 1:
            positions = InputPositions(model_dir, layout.pipeline_id, iterator, keep_checkpoints)
    manager = checkpointing.CheckpointManager(
        model_dir, model, optimizer, iterator=iterator if positions is None else None, max_to_keep=keep_checkpoints,
        strategy=strategy_obj, input_positions=positions, dropout_rng=_dropout_rng_state(model),
    )
    start_step = manager.restore_latest()
    if distributed_input:
        consumed = start_step * accumulation * layout.local_replicas  # per-replica batches per pipeline
        iterator = iter(strategy_obj.distribute_datasets_from_function(
            lambda input_context: input_dataset(input_context).skip(consumed)))
    export_dir = os.path.join(model_dir, "export")
    export_missing = export and is_chief and not tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb"))
    if start_step >= train_steps and not export_missing:
        print_fn(f"{model_dir} already holds step {start_step} ≥ train_steps {train_steps}"
                 f"{' and its export' if export else ''}; nothing to do, no file changed.")
        return _stored_summary(model_dir) or {"model_dir": model_dir, "step": start_step, "final_losses": {},
                                              "final_metrics": {}, "tokens_per_second": None, "wall_time": None,
                                              "latest_checkpoint": manager.latest_checkpoint,
                                              "weights_fingerprint": weights_fingerprint(model)}
    if start_step:
        print_fn(f"Resuming from {manager.latest_checkpoint} at step {start_step}."
                 + (f" ({manager.restore_notice})" if manager.restore_notice else ""))
    if distribution.any_worker(strategy_obj, handler.should_stop):
        print_fn(f"Preempted ({handler.received_signal or 'SIGTERM to another worker'}) during start-up, before "
                 f"step {start_step + 1}; nothing to save, exiting.")
        return {"model_dir": model_dir, "step": start_step, "preempted": True, "final_losses": {},
                "final_metrics": {}, "tokens_per_second": None, "wall_time": format_duration(0),
                "latest_checkpoint": manager.latest_checkpoint, "weights_fingerprint": None}
    if start_step >= train_steps:
        print_fn(f"{model_dir} already holds step {start_step} ≥ train_steps {train_steps}; exporting only.")
        summary = _stored_summary(model_dir) or {"model_dir": model_dir, "step": start_step}
        return _export(handler, summary, model, tokenizer, export_dir, seq_len, model_dir, print_fn)
    if is_chief:
        tf.io.gfile.makedirs(model_dir)
        _write_if_changed(os.path.join(model_dir, "operative_config.gin"), gin.config_str())

    evaluator = eval_reporter = None
    last_eval = {}
    if eval_every and is_chief:
        evaluator = evaluation.PretrainingEvaluator(model, objective, evaluation.evaluation_batches(
            objective, corpus_paths if evaluate_heldout else eval_corpus_paths,
            "heldout" if evaluate_heldout else "all", tokenizer.kind, vocab_path, seq_len, batch_size, eval_batches,
        ))
        eval_reporter = EvalReporter(os.path.join(model_dir, "eval"), train_steps, print_fn)

    train_loop = make_train_loop(strategy_obj, model, optimizer, objective, seed, accumulation, layout,
                                 distributed_input)
    reporter = ProgressReporter(
        os.path.join(model_dir, "train") if is_chief else None, train_steps, seq_len * batch_size, print_fn
    )

    def run_evaluation(at_step):
        if evaluator is not None:
            last_eval.clear()
            last_eval.update(step=at_step, **evaluator.evaluate())
            eval_reporter.report(at_step, {k: v for k, v in last_eval.items() if k != "step"})
            reporter.start(at_step)  # tokens/s and the ETA count training time only

    reporter.start(start_step)
    step = start_step
    window_losses, window_sums, window_calls = {}, {}, 0
    last_losses, last_metrics, throughput = {}, {}, []
    preempted = False
    if start_step == 0 and train_steps > 0:
        run_evaluation(0)
    try:
        while step < train_steps:
            boundary = min(train_steps, (step // log_every + 1) * log_every,
                           (step // checkpoint_every + 1) * checkpoint_every,
                           (step // (eval_every or train_steps) + 1) * (eval_every or train_steps))
            updates = min(steps_per_loop, boundary - step)
            loss, losses, sums = train_loop(iterator, tf.constant(updates, tf.int32), tf.constant(step, tf.int64))
            step += updates
            manager.step.assign(step)
            window_calls += 1
            _sum_into(window_losses, {"loss": loss.numpy(), **{k: v.numpy() for k, v in losses.items()}})
            _sum_into(window_sums, {k: v.numpy() for k, v in sums.items()})
            if step % log_every == 0 or step == train_steps:
                last_losses = {k: float(v) / window_calls for k, v in window_losses.items()}
                last_metrics = objectives.metrics_from_sums(window_sums)
                learning_rate = float(tf.convert_to_tensor(optimizer.learning_rate))
                throughput.append(reporter.report(step, last_losses, last_metrics, learning_rate))
                window_losses, window_sums, window_calls = {}, {}, 0
            if eval_every and (step % eval_every == 0 or step == train_steps):
                run_evaluation(step)
            if distribution.any_worker(strategy_obj, handler.should_stop):  # every worker stops at this step
                manager.save(force=True)
                preempted = True
                print_fn(f"Preempted ({handler.received_signal or 'SIGTERM to another worker'}): saved step {step} "
                         f"to {manager.latest_checkpoint}; exiting.")
                break
            if step % checkpoint_every == 0 or step == train_steps:
                manager.save(force=True)
    except tf.errors.OpError as error:
        lost = distribution.peer_lost(strategy_obj, error)
        if lost is None:
            raise
        raise lost from None

    summary = {
        "model_dir": model_dir,
        "objective": objective,
        "step": step,
        "train_steps": train_steps,
        "preempted": preempted,
        "latest_checkpoint": manager.latest_checkpoint,
        "final_losses": last_losses,
        "final_metrics": last_metrics,
        "eval": dict(last_eval),
        "tokens_per_second": float(np.median(throughput)) if throughput else None,
        "wall_time": format_duration(time.perf_counter() - started),
        "strategy": strategy,
        "replicas": strategy_obj.num_replicas_in_sync,
        "precision": precision_policy,
        "input_pipelines": layout.num_pipelines,
        "input_shards": shards,
        "weights_fingerprint": weights_fingerprint(model),
        "corpus_invalid_utf8_lines": corpus_stats.invalid_utf8_lines if corpus_stats is not None else None,
    }

    def write_card(summary):
        model_card.write_model_card(model_dir, model_card.pretraining_facts(
            summary, model, tokenizer, vocab_path, corpus_paths, batch_size, seq_len))

    if is_chief and step > start_step:
        summary["curves"] = curves.plot_run(model_dir)
    if is_chief:
        _write_summary(model_dir, summary)
        write_card(summary)
    if export and is_chief and not preempted and step >= train_steps:
        summary = _export(handler, summary, model, tokenizer, export_dir, seq_len, model_dir, print_fn)
        write_card(summary)
    return summary


def _export(handler, summary, model, tokenizer, export_dir, seq_len, model_dir, print_fn):
    """Writes the serving SavedModel; a SIGTERM meanwhile abandons it (a rerun exports) and returns."""
    from plm_tf.export.exporter import export_saved_model

    print_fn(f"Exporting the serving SavedModel to {export_dir} ...")
    export_started = time.perf_counter()
    try:
        with handler.interrupting():
            summary["export_dir"] = export_saved_model(
                model, tokenizer, export_dir,
                max_seq_length=min(seq_len, model.encoder_config["max_position_embeddings"]
                                   - model.encoder_config["position_offset"]),
            )
    except checkpointing.Preempted as signal_name:
        print_fn(f"Preempted ({signal_name}) during the export: the checkpoint is complete, {export_dir} was not "
                 "written; rerun the same command to export.")
        summary["preempted"] = True
        return summary
    print_fn(f"Exported {summary['export_dir']} in {format_duration(time.perf_counter() - export_started)}.")
    summary["preempted"] = False
    _write_summary(model_dir, summary)
    return summary


def _input_shards(model_dir, input_shards, layout, is_chief):
    """S for this run: `input_shards` or the number of input pipelines; checked against, or recorded in,
    `model_dir/input_layout.json`, since a run resumes only with the input layout it started with."""
    shards = layout.num_pipelines if input_shards is None else input_shards
    path = os.path.join(model_dir, "input_layout.json")
    wanted = {"input_pipelines": layout.num_pipelines, "input_shards": shards}
    try:
        with tf.io.gfile.GFile(path) as f:
            stored = json.load(f)
    except (tf.errors.OpError, ValueError):
        stored = None
    if stored is not None and stored != wanted and checkpointing.find_checkpoints(model_dir)[0]:
        raise TrainingError(
            f"{model_dir} was started with {stored['input_pipelines']} input pipeline(s) (workers) and "
            f"pretrain.input_shards = {stored['input_shards']}; this run has {layout.num_pipelines} and "
            f"{shards}. Resume it with the same workers and input_shards, or use a new model_dir.")
    if is_chief and stored != wanted:
        tf.io.gfile.makedirs(model_dir)
        with tf.io.gfile.GFile(path, "w") as f:
            json.dump(wanted, f)
    return shards


def check_writable(model_dir):
    """TrainingError unless `model_dir` is, or can be created as, a directory this process can write to."""
    if "://" in os.fspath(model_dir):  # remote file systems: permissions show at the first write
        return
    existing = os.path.abspath(model_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise TrainingError(f"model_dir {model_dir} cannot be created: {existing} is a file, not a directory.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TrainingError(f"model_dir {model_dir} is not writable: {existing} is read-only or its permissions "
                            "deny writing.")


def _corpus_stats(corpus_paths, model_dir, is_chief):
    """`corpus.corpus_stats` of the corpus the pipeline reads (None for static TFRecords).

    Counting is a Python pass over every file, so the result is kept in `model_dir/corpus_stats.json`, keyed by
    each file's path, size and modification time: a resumed run over the same files does not read them again.
    """
    import dataclasses

    from plm_tf.gin_config import query_or_none

    if query_or_none("pretraining_dataset.masking") == "static":
        return None
    files = corpus.resolve_paths(pipelines.default_corpus() if corpus_paths is None else corpus_paths)
    key = [[path, stat.length, stat.mtime_nsec] for path, stat in ((f, tf.io.gfile.stat(f)) for f in files)]
    cache = os.path.join(model_dir, "corpus_stats.json")
    try:
        with tf.io.gfile.GFile(cache) as f:
            stored = json.load(f)
        if stored["files"] == key:
            return corpus.CorpusStats(**stored["stats"])
    except (tf.errors.OpError, ValueError, KeyError, TypeError):
        pass  # no cache yet, or an unreadable one: count again
    stats = corpus.corpus_stats(files)
    if is_chief:
        tf.io.gfile.makedirs(model_dir)
        with tf.io.gfile.GFile(cache, "w") as f:
            json.dump({"files": key, "stats": dataclasses.asdict(stats)}, f)
    return stats


def _stored_summary(model_dir):
    try:
        with tf.io.gfile.GFile(os.path.join(model_dir, "summary.json")) as f:
            return json.load(f)
    except (tf.errors.OpError, ValueError):
        return None


def _write_summary(model_dir, summary):
    """Writes `model_dir/summary.json` via a temporary file and a rename (never half-written)."""
    path = os.path.join(model_dir, "summary.json")
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        json.dump(summary, f, indent=2)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def _write_if_changed(path, text):
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            if f.read() == text:
                return
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)
