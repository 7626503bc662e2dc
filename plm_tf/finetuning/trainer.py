"""The gin-configured fine-tuning run behind `python -m plm_tf.finetune`.

Data flow: task files → `tasks.load_task` → `features.encode_split` (in-graph tokenizer) → shuffled batches →
`ClassifierModel` (encoder + head) trained with the recipe's optimizer, schedule and layer-wise LR decay →
dev metrics after every epoch, each beside the majority-class baseline → the best epoch's weights kept in
`model_dir/best/` → test metrics (when the test split has labels) and `model_dir/test_predictions.tsv` (when
there is a test split) → `model_dir/results.json` and a model card, `model_dir/README.md`.

What the user sees: a header line; every `log_every` updates a progress line (loss, learning rate,
examples/s, ETA of the training that remains); after each epoch the dev metrics with the majority-class
baseline's beside them; one line when the kept epoch predicts nothing but the majority class.

`run_finetuning(gin_files, bindings, task, model_dir, init_checkpoint)` is the whole run in the right order:
the pretraining run's gin (operative_config.gin beside the checkpoint) is parsed first to rebuild and restore
the encoder, then the fine-tuning gin files, which bind `finetune.*` and `finetuning_optimizer.*`.
"""
import json
import math
import os
import time

import gin
import keras
import numpy as np
import tensorflow as tf

from plm_tf import model_card
from plm_tf.finetuning import features as features_lib
from plm_tf.finetuning import metrics as metrics_lib
from plm_tf.finetuning import model as model_lib
from plm_tf.finetuning import optimization, tasks
from plm_tf.gin_config import parse_gin
from plm_tf.training import schedules
from plm_tf.training.progress import format_duration

SCHEDULES = {
    "electra": schedules.WarmupPolynomialDecayProduct,  # linear decay × min(1, step / warmup)
    "bert": schedules.WarmupLinearDecay,                 # linear decay, linear ramp during warmup (ALBERT too)
    "fairseq": schedules.PolynomialDecayWithWarmup,      # RoBERTa: ramp, then linear decay over the rest
}
FEATURE_KEYS = ("input_ids", "input_mask", "segment_ids")


class FinetuningError(ValueError):
    """A fine-tuning run that cannot start as configured; the message says what to change."""


def _resolve_tokenizer(tokenizer_kind, vocab_path, lower_case, encoder_info):
    """(tokenizer, vocab_path, lower_case): the checkpoint's tokenizer (a `finetune.*` setting may only repeat
    it), or for a random encoder the bound one (default WordPiece with the embedded vocabulary)."""
    from plm_tf.convert.model_dir import TokenizerSpec

    if encoder_info is not None:
        recorded = {"tokenizer_kind": encoder_info["tokenizer_kind"], "lower_case": encoder_info.get("lower_case")}
        for name, value in (("tokenizer_kind", tokenizer_kind), ("lower_case", lower_case)):
            if value is not None and recorded[name] is not None and value != recorded[name]:
                raise FinetuningError(
                    f"finetune.{name} = {value!r} but {encoder_info['checkpoint']} was pretrained with "
                    f"{recorded[name]!r}; leave it unset to use the checkpoint's tokenizer.")
        kind = encoder_info["tokenizer_kind"]
        vocab_path = vocab_path if vocab_path is not None else encoder_info["vocab_path"]
        lower_case = recorded["lower_case"] if recorded["lower_case"] is not None else lower_case
    else:
        kind = tokenizer_kind or "wordpiece"
    tokenizer = TokenizerSpec(kind, vocab_path, lower_case).load()
    return tokenizer, vocab_path, getattr(tokenizer, "lower_case", False)


def _random_encoder(tokenizer):
    """A fresh encoder from the bound `encoder_config` (vocab_size None = the tokenizer's size)."""
    from plm_tf.models.configs import encoder_config, resolve_vocab_size

    try:
        config = encoder_config()
    except (TypeError, ValueError, RuntimeError) as error:
        raise FinetuningError(
            "Without --init_checkpoint the encoder is initialised at random and needs its encoder_config.* "
            f"bindings from a gin file (e.g. --gin_file=electra_demo.gin): {error}") from None
    config["vocab_size"] = resolve_vocab_size(config["vocab_size"], tokenizer)
    return model_lib.new_encoder(config), config


def _batches(encoded, labels, batch_size, shuffle_seed=None):
    dataset = tf.data.Dataset.from_tensor_slices(({k: encoded[k] for k in FEATURE_KEYS}, labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=False)
    return dataset.batch(batch_size).prefetch(2)


def predict(model, encoded, batch_size=128, call=None):
    """Model outputs for encoded features: logits [N, C] (scores [N, 1] for regression), numpy.

    `call` is a reusable `tf.function` of the model (see `make_predict_fn`); None traces a new one.
    """
    call = call or make_predict_fn(model)
    count = len(encoded["input_ids"])
    outputs = [call({k: encoded[k][i:i + batch_size] for k in FEATURE_KEYS}).numpy()
               for i in range(0, count, batch_size)]
    return np.concatenate(outputs)


def make_predict_fn(model):
    """A `tf.function` running `model` in inference mode on a batch of features (traced once per shape)."""
    spec = {k: tf.TensorSpec([None, None], tf.int32) for k in FEATURE_KEYS}
    return tf.function(lambda batch: model(batch, training=False), input_signature=[spec])


def _loss_fn(is_regression):
    if is_regression:
        return lambda labels, outputs: tf.reduce_mean(tf.square(outputs[:, 0] - tf.cast(labels, outputs.dtype)))
    return lambda labels, outputs: tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=outputs))


def format_metrics(metrics, baseline=None):
    """`name value` pairs, each followed by `(majority value)` when the majority-class baseline has it."""
    return " ".join(f"{name} {value:.4f}" + (f" (majority {baseline[name]:.4f})" if baseline and name in baseline
                                             else "") for name, value in metrics.items())


def write_predictions(path, task, outputs):
    """Writes one row per example: `index`, `prediction` (the label name, or the score for regression) and,
    for classification, one `probability_<label>` column per class (softmax of the logits). Returns `path`."""
    if task.is_regression:
        header, rows = ["index", "prediction"], [[i, f"{score:.6g}"] for i, score in enumerate(outputs[:, 0])]
    else:
        probabilities = tf.nn.softmax(outputs, axis=-1).numpy()
        header = ["index", "prediction"] + [f"probability_{name}" for name in task.label_names]
        rows = [[i, task.label_names[int(np.argmax(p))]] + [f"{v:.6f}" for v in p] for i, p in enumerate(probabilities)]
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("".join("\t".join(str(v) for v in row) + "\n" for row in [header] + rows))
    return path


def majority_baseline(task, split):
    """Metrics of always predicting the most frequent train class (None for regression / unlabelled)."""
    labels = task.label_ids(split) if split in task.splits else None
    if task.is_regression or labels is None:
        return None
    predictions = np.full(len(labels), task.majority_class())
    positive = task.label_names.index(task.positive_label) if task.positive_label is not None else None
    return metrics_lib.classification_metrics(labels, predictions, task.num_classes, positive)


@gin.configurable(denylist=["task", "model_dir", "encoder", "encoder_info", "print_fn"])
def finetune(
    task,
    model_dir,
    encoder=None,
    encoder_info=None,
    learning_rate=1e-4,
    layer_decay=1.0,
    num_epochs=3,
    batch_size=32,
    warmup_proportion=0.1,
    schedule="electra",
    seq_len=128,
    dropout_rate=0.1,
    max_train_examples=None,
    eval_batch_size=128,
    selection_metric=None,
    regression=None,
    text_columns=None,
    label_column="label",
    positive_label=None,
    tfds_data_dir=None,
    tokenizer_kind=None,
    vocab_path=None,
    lower_case=None,
    label_names=None,
    log_every=50,
    seed=0,
    print_fn=print,
):
    """Fine-tunes an encoder on a GLUE-style task; returns the results dict (also `model_dir/results.json`).

    Args:
        task: a task folder (train/dev[/test].tsv[.gz]) or "tfds:glue/<config>" (prepared locally).
        model_dir: `results.json`, `task.json` (labels, tokenizer, seq_len) and `best/` (weights of the best
            epoch) go here.
        encoder: a restored `TransformerEncoder` (`model.restore_encoder`); None = random init from the
            bound `encoder_config`.
        encoder_info: the dict `restore_encoder` returns with it (tokenizer of the checkpoint).
        learning_rate: peak learning rate (ELECTRA Small 3e-4, Base 1e-4; ALBERT/RoBERTa 1e-5 to 3e-5).
        layer_decay: ELECTRA's layer-wise LR decay (0.8 Small/Base, 0.9 Large); 1.0 disables it.
        num_epochs: passes over the (sub-sampled) train split; dev is evaluated after each.
        batch_size: train batch size.
        warmup_proportion: warmup steps as a fraction of all train steps (ELECTRA/BERT 0.1, RoBERTa 0.06).
        schedule: "electra", "bert" or "fairseq" (see SCHEDULES).
        seq_len: tokens per example, special tokens included (longer texts are truncated).
        dropout_rate: dropout before the classifier.
        max_train_examples: use a seeded random subset of train of at most this size (None = all).
        eval_batch_size: batch size for dev/test prediction.
        selection_metric: dev metric that picks the best epoch; None = accuracy (classification) or the
            Pearson/Spearman mean (regression). E.g. "matthews_corrcoef" for CoLA, "f1" for MRPC/QQP.
        regression: force regression (True) or classification (False); None infers it from the labels.
        text_columns: the TSV text column(s); None = sentence1/sentence2 or sentence.
        label_column: the TSV label column.
        positive_label: the class scored by binary F1 (None = "1", else the second sorted label).
        tfds_data_dir: data_dir of a prepared TFDS glue dataset.
        tokenizer_kind / vocab_path / lower_case: with a checkpoint, None means the checkpoint's; without, the
            tokenizer of the random-init encoder (default WordPiece with the embedded vocab; lower_case None =
            the kind's default). A converted model.gin binds all three.
        label_names: the classes in the order of the classifier's outputs, e.g. ['ham', 'spam']; None = the
            train labels, sorted, which must also be exactly the labels dev (and a labelled test) show.
        log_every: updates between progress lines within an epoch.
        seed: model init, dropout, train subset and shuffling.
        print_fn: where progress lines go.
    """
    if schedule not in SCHEDULES:
        raise FinetuningError(f"finetune.schedule must be one of {sorted(SCHEDULES)}, got {schedule!r}.")
    for name, value in (("num_epochs", num_epochs), ("batch_size", batch_size), ("eval_batch_size", eval_batch_size),
                        ("log_every", log_every)):
        if value < 1:
            raise FinetuningError(f"finetune.{name} must be at least 1, got {value}.")
    if not 0.0 <= warmup_proportion <= 1.0:
        raise FinetuningError(f"finetune.warmup_proportion must be in [0, 1], got {warmup_proportion}.")
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    task_data = tasks.load_task(task, tfds_data_dir=tfds_data_dir, text_columns=text_columns,
                                label_column=label_column, regression=regression, positive_label=positive_label,
                                label_names=label_names)
    task_data.subsample_train(max_train_examples, seed)
    tokenizer, vocab_path, lower_case = _resolve_tokenizer(tokenizer_kind, vocab_path, lower_case, encoder_info)
    if encoder is None:
        encoder, config = _random_encoder(tokenizer)
        init = "random"
    else:
        config = encoder_info["encoder_config"]
        init = encoder_info["checkpoint"]
        if encoder.vocab_size != tokenizer.vocab_size:
            raise FinetuningError(f"The encoder has {encoder.vocab_size} token rows but the tokenizer has "
                                  f"{tokenizer.vocab_size} tokens.")
    if seq_len > encoder.max_position_embeddings - encoder.position_offset:
        raise FinetuningError(f"finetune.seq_len = {seq_len} exceeds the encoder's "
                              f"{encoder.max_position_embeddings - encoder.position_offset} positions.")
    selection_metric = selection_metric or metrics_lib.primary_metric(task_data)

    encoded = {split: features_lib.encode_split(tokenizer, data, seq_len) for split, data in task_data.splits.items()}
    labels = {split: task_data.label_ids(split) for split in task_data.splits}
    label_dtype = np.float32 if task_data.is_regression else np.int32
    train_labels = np.asarray(labels["train"], label_dtype)
    steps_per_epoch = math.ceil(len(train_labels) / batch_size)
    total_steps = steps_per_epoch * num_epochs
    warmup_steps = int(round(warmup_proportion * total_steps))
    if schedule == "fairseq" and warmup_steps >= total_steps:
        warmup_steps = total_steps - 1

    model = model_lib.ClassifierModel(encoder, task_data.num_classes, dropout_rate=dropout_rate, name="classifier")
    model.build()
    multipliers = optimization.layerwise_lr_multipliers(encoder, [model.head], layer_decay)
    optimizer = optimization.finetuning_optimizer(
        learning_rate=SCHEDULES[schedule](learning_rate, total_steps, warmup_steps),
        learning_rate_multipliers=multipliers)
    optimizer.build(model.trainable_variables)
    loss_fn = _loss_fn(task_data.is_regression)
    predict_fn = make_predict_fn(model)

    @tf.function(reduce_retracing=True)
    def train_step(batch, batch_labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(batch_labels, model(batch, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    tf.io.gfile.makedirs(model_dir)
    best_dir = os.path.join(model_dir, "best")
    checkpoint = tf.train.Checkpoint(model=model)
    best_manager = tf.train.CheckpointManager(checkpoint, best_dir, max_to_keep=1)
    task_info = {
        "task": task, "label_names": task_data.label_names, "is_pair": task_data.is_pair,
        "positive_label": task_data.positive_label, "seq_len": seq_len, "tokenizer_kind": tokenizer.kind,
        "vocab_path": vocab_path, "lower_case": lower_case, "encoder_config": config,
        "num_classes": task_data.num_classes, "dropout_rate": dropout_rate,
        "model_type": (encoder_info or {}).get("model_type"),
    }
    with tf.io.gfile.GFile(os.path.join(model_dir, "task.json"), "w") as f:
        json.dump(task_info, f, indent=2)
    print_fn(f"{task_data.name}: {len(train_labels)} train / {len(labels['dev'])} dev examples, "
             f"{task_data.num_classes if not task_data.is_regression else 'regression'} classes, init {init}; "
             f"{num_epochs} epochs × {steps_per_epoch} steps, warmup {warmup_steps}, lr {learning_rate}, "
             f"layer decay {layer_decay}")

    baselines = {split: majority_baseline(task_data, split) for split in ("dev", "test") if split in task_data.splits}
    majority = task_data.majority_class()
    epochs, best = [], None
    for epoch in range(1, num_epochs + 1):
        epoch_start = window_start = time.perf_counter()
        losses, window_updates = [], 0
        for batch, batch_labels in _batches(encoded["train"], train_labels, batch_size, seed + epoch):
            losses.append(float(train_step(batch, batch_labels)))
            step = len(losses)
            window_updates += 1
            if epoch == 1 and step == 1:  # the first update traces the train step: keep it out of the speed
                window_start, window_updates = time.perf_counter(), 0
            if step % log_every == 0 and step < steps_per_epoch:
                now = time.perf_counter()
                seconds_per_update = (now - window_start) / max(window_updates, 1)
                window_start, window_updates = now, 0
                remaining = total_steps - ((epoch - 1) * steps_per_epoch + step)
                print_fn(f"epoch {epoch}/{num_epochs} step {step}/{steps_per_epoch} | loss "
                         f"{np.mean(losses[-log_every:]):.4f} | lr {float(tf.convert_to_tensor(optimizer.learning_rate)):.2e}"
                         f" | {batch_size / max(seconds_per_update, 1e-9):,.1f} examples/s | "
                         f"ETA {format_duration(remaining * seconds_per_update)} (training)")
        dev_outputs = predict(model, encoded["dev"], eval_batch_size, predict_fn)
        dev = metrics_lib.task_metrics(task_data, labels["dev"], dev_outputs)
        if selection_metric not in dev:
            raise FinetuningError(f"finetune.selection_metric = {selection_metric!r} is not one of {sorted(dev)}.")
        record = {"epoch": epoch, "step": epoch * steps_per_epoch, "train_loss": float(np.mean(losses)), "dev": dev,
                  "majority_only": (majority is not None and bool(np.all(np.argmax(dev_outputs, -1) == majority))),
                  "seconds": round(time.perf_counter() - epoch_start, 1)}
        epochs.append(record)
        improved = best is None or dev[selection_metric] > best["dev"][selection_metric]
        if improved:
            best = record
            best_manager.save(checkpoint_number=epoch)
        print_fn(f"epoch {epoch}/{num_epochs} | train loss {record['train_loss']:.4f} | dev "
                 + format_metrics(dev, baselines.get("dev")) + (" | best" if improved else "")
                 + f" | {record['seconds']}s")

    checkpoint.restore(best_manager.latest_checkpoint).assert_existing_objects_matched()
    results = {
        "task": task_data.name, "init": init, "selection_metric": selection_metric,
        "num_train_examples": int(len(train_labels)), "num_dev_examples": len(labels["dev"]),
        "hyperparameters": {"learning_rate": learning_rate, "layer_decay": layer_decay, "num_epochs": num_epochs,
                            "batch_size": batch_size, "warmup_proportion": warmup_proportion,
                            "schedule": schedule, "seq_len": seq_len, "dropout_rate": dropout_rate,
                            "optimizer": type(optimizer).__name__, "train_steps": total_steps,
                            "warmup_steps": warmup_steps, "seed": seed},
        "epochs": epochs,
        "best": {"epoch": best["epoch"], "checkpoint": best_manager.latest_checkpoint, "dev": best["dev"],
                 "majority_only": best["majority_only"]},
        "majority_baseline": baselines,
    }
    if best["majority_only"]:
        print_fn(f"Warning: the best epoch ({best['epoch']}) predicts the majority class "
                 f"{task_data.label_names[majority]!r} for every dev example, so its dev scores are the majority "
                 "baseline's: it learned nothing beyond the class frequencies (train longer, or change the "
                 "learning rate or the initial checkpoint).")
    if "test" in task_data.splits:
        test_outputs = predict(model, encoded["test"], eval_batch_size, predict_fn)
        results["test_predictions"] = write_predictions(
            os.path.join(model_dir, "test_predictions.tsv"), task_data, test_outputs)
        results["num_test_examples"] = len(encoded["test"]["input_ids"])
        if labels["test"] is not None:
            results["test"] = metrics_lib.task_metrics(task_data, labels["test"], test_outputs)
            print_fn("test (best epoch) | " + format_metrics(results["test"], baselines.get("test")))
        print_fn(f"test predictions (best epoch): {results['test_predictions']}")
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    with tf.io.gfile.GFile(os.path.join(model_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    model_card.write_model_card(model_dir, model_card.finetuning_facts(results, task_info, model_dir))
    return results


def run_finetuning(gin_files, bindings, task, model_dir, init_checkpoint=None, print_fn=print):
    """Restores the encoder of `init_checkpoint` (if any), parses the fine-tuning gin, runs `finetune`."""
    encoder = encoder_info = None
    if init_checkpoint:
        encoder, encoder_info = model_lib.restore_encoder(init_checkpoint)
    parse_gin(gin_files, bindings)
    return finetune(task, model_dir, encoder=encoder, encoder_info=encoder_info, print_fn=print_fn)
