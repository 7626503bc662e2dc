"""A short `README.md` model card in every run folder: what the model is, what it saw, how well it did, how to
load it (in the spirit of Hugging Face model cards, without their YAML header).

`write_model_card(directory, facts)` renders a dict of facts; `pretraining_facts(...)` and
`finetuning_facts(...)` build that dict for the two trainers, and an exporter passes its own. Keys of `facts`
(all optional except `title`):

    title       str                     first heading, e.g. "ELECTRA pretraining run"
    summary     str                     one paragraph under the title
    model       {name: value}           family, objective, sizes (layers, hidden, heads, ...), parameters
    vocab       {name: value}           tokenizer kind, vocabulary path and size
    data        {name: value}           corpus or task, examples, sequence length, batch
    training    {name: value}           steps, schedule, wall time, throughput
    metrics     {section: {name: number}}   e.g. {"final train losses": {...}, "best dev": {...}}
    files       {path: what}            the folder's contents worth knowing
    load        str                     a Python or shell snippet that loads the model (rendered as code)
"""
import os

import tensorflow as tf

from plm_tf.data import assets

CARD_NAME = "README.md"


def _value(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _table(rows):
    lines = ["| | |", "|---|---|"]
    lines += [f"| {name} | {_value(value)} |" for name, value in rows.items() if value is not None]
    return lines


def render_model_card(facts):
    """The card's Markdown text for `facts` (see the module docstring)."""
    lines = [f"# {facts['title']}", ""]
    if facts.get("summary"):
        lines += [facts["summary"], ""]
    for key, heading in (("model", "Model"), ("vocab", "Vocabulary"), ("data", "Data"), ("training", "Training")):
        if facts.get(key):
            lines += [f"## {heading}", ""] + _table(facts[key]) + [""]
    if facts.get("metrics"):
        lines += ["## Results", ""]
        for section, values in facts["metrics"].items():
            if values:
                lines += [f"**{section}**", ""] + _table(values) + [""]
    if facts.get("files"):
        lines += ["## Files", ""] + [f"- `{path}`: {what}" for path, what in facts["files"].items()] + [""]
    if facts.get("load"):
        language = "python" if "import " in facts["load"] else "sh"
        lines += ["## How to load it", "", f"```{language}", facts["load"].strip(), "```", ""]
    return "\n".join(lines)


def write_model_card(directory, facts):
    """Writes `directory/README.md` from `facts`; returns its path."""
    path = os.path.join(directory, CARD_NAME)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(render_model_card(facts))
    return path


FAMILY = {"electra": "ELECTRA", "mlm": "RoBERTa", "mlm_nsp": "BERT", "mlm_sop": "ALBERT"}
_SIZE_KEYS = ("num_layers", "hidden_size", "num_heads", "intermediate_size", "embedding_size",
              "max_position_embeddings", "vocab_size", "share")


def encoder_facts(encoder_config, family=None, objective=None, parameters=None):
    """The `model` table: family, objective, the encoder's sizes and its parameter count."""
    facts = {"family": family, "objective": objective}
    facts.update({key: encoder_config.get(key) for key in _SIZE_KEYS if key in encoder_config})
    facts["parameters"] = f"{parameters:,}" if parameters else None
    return facts


def pretraining_facts(summary, model, tokenizer, vocab_path, corpus_paths, batch_size, seq_len):
    """Facts of a `python -m plm_tf.train` run: its summary dict (`plm_tf.training.trainer.pretrain`), the built
    pretraining model and the tokenizer it was trained with."""
    from plm_tf.models.parameter_counts import component_counts

    objective = summary["objective"]
    counts = component_counts(model)
    kept = "the discriminator" if objective == "electra" else "the encoder and its masked-LM head"
    facts = {
        "title": f"{FAMILY[objective]} pretraining run",
        "summary": (f"This {FAMILY[objective]} model was pretrained with plm_tf (`python -m plm_tf.train`), objective "
                    f"`{objective}`, {summary['step']} of {summary['train_steps']} updates"
                    + (" (stopped early: preempted)." if summary.get("preempted") else ".")
                    + f" The model to keep is {kept}."),
        "model": dict(encoder_facts(model.encoder_config, FAMILY[objective], objective, counts["encoder"]),
                      **{"parameters with pretraining heads": f"{counts['pretraining_model']:,}"}),
        "vocab": {"tokenizer": tokenizer.kind, "vocabulary": vocab_path or "embedded default (plm_tf/assets)",
                  "tokens": tokenizer.vocab_size},
        "data": {"corpus": assets.describe_corpus(corpus_paths),
                 "sequence length": seq_len, "batch size": batch_size, "tokens seen": summary["step"] * batch_size * seq_len},
        "training": {"updates": summary["step"], "wall time": summary.get("wall_time"),
                     "tokens/s (median)": summary.get("tokens_per_second"), "strategy": summary.get("strategy"),
                     "precision": summary.get("precision"), "latest checkpoint": summary.get("latest_checkpoint")},
        "metrics": {"final train losses (last logging window)": summary.get("final_losses"),
                    "final train metrics (last logging window)": summary.get("final_metrics")},
        "files": {"ckpt-*": "checkpoints (model, optimizer, data position)",
                  "operative_config.gin": "the complete configuration of the run",
                  "summary.json": "the numbers above", "train/": "TensorBoard logs"},
    }
    run_dir = summary["model_dir"]
    load = [f"# fine-tune it: python -m plm_tf.finetune --init_checkpoint={run_dir} --task_dir=TASK_DIR",
            "from plm_tf.finetuning.model import restore_encoder",
            f"encoder, info = restore_encoder({run_dir!r})  # the encoder fine-tuning starts from"]
    if summary.get("export_dir"):
        facts["files"]["export/"] = "serving SavedModel (raw text in; see plm_tf.export.serving)"
        load += ["", "import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the tokenizer ops)",
                 f"served = tf.saved_model.load({summary['export_dir']!r})",
                 "print(served.signatures['serving_default'](tf.constant(['The quick brown fox.'])))"]
    facts["load"] = "\n".join(load)
    return facts


def finetuning_facts(results, task_info, model_dir):
    """Facts of a `python -m plm_tf.finetune` run from its results dict (`plm_tf.finetuning.trainer.finetune`)."""
    hyper = results["hyperparameters"]
    metrics = {f"best dev (epoch {results['best']['epoch']} of {hyper['num_epochs']})": results["best"]["dev"]}
    baseline = results.get("majority_baseline") or {}
    if baseline.get("dev"):
        metrics["dev, always predicting the majority train class"] = baseline["dev"]
    if "test" in results:
        metrics["test (best epoch)"] = results["test"]
    if baseline.get("test"):
        metrics["test, always predicting the majority train class"] = baseline["test"]
    summary = (f"An encoder fine-tuned with plm_tf (`python -m plm_tf.finetune`) on {results['task']}, "
               f"initialised from {results['init']}.")
    if results["best"].get("majority_only"):
        summary += (" **It predicts the majority class for every dev example: it learned nothing beyond the "
                    "class frequencies.**")
    facts = {
        "title": f"{results['task']} classifier" if task_info.get("label_names") else f"{results['task']} regressor",
        "summary": summary,
        "model": encoder_facts(task_info["encoder_config"], parameters=None),
        "vocab": {"tokenizer": task_info["tokenizer_kind"],
                  "vocabulary": task_info.get("vocab_path") or "embedded default (plm_tf/assets)"},
        "data": {"task": task_info["task"], "labels": task_info.get("label_names") or "regression score",
                 "train examples": results["num_train_examples"], "dev examples": results["num_dev_examples"],
                 "test examples": results.get("num_test_examples"), "sequence length": hyper["seq_len"]},
        "training": {key: hyper[key] for key in ("learning_rate", "layer_decay", "num_epochs", "batch_size",
                                                 "train_steps", "warmup_steps", "schedule", "seed")},
        "metrics": metrics,
        "files": {"results.json": "every epoch's dev metrics, the best epoch, test metrics, baselines",
                  "task.json": "labels, tokenizer and sequence length the classifier needs",
                  "best/": "weights of the best epoch"},
        "load": "\n".join([
            "from plm_tf.finetuning.export import export_from_model_dir, load_finetuned",
            f"model, tokenizer, info = load_finetuned({model_dir!r})  # Keras classifier, best epoch",
            f"export_from_model_dir({model_dir!r}, 'classifier_export')  # raw-text SavedModel",
            "import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the tokenizer ops)",
            "served = tf.saved_model.load('classifier_export')",
            "print(served.signatures['serving_default'](" + ("text_a=tf.constant(['...']), text_b=tf.constant(['...'])"
                                                            if task_info.get("is_pair") else "text=tf.constant(['...'])")
            + "))"]),
    }
    facts["training"]["wall seconds"] = results.get("wall_seconds")
    if results.get("test_predictions"):
        facts["files"][os.path.basename(results["test_predictions"])] = (
            "the best epoch's test predictions: index, predicted label, class probabilities (or score)")
    return facts
