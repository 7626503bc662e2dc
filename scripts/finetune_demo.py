"""Pretrained vs random-init fine-tuning on the shared spam and entailment tasks, with the majority baseline.

    python -m plm_tf.train --model_dir=/tmp/demo_pretrain            # any `python -m plm_tf.train` run
    python scripts/finetune_demo.py --pretrain_dir=/tmp/demo_pretrain --out_dir=/tmp/demo_finetune

For each task, initialisation and seed it fine-tunes once; both initialisations of a task use the same recipe
(gin/finetune/electra_small.gin unless --gin_file), seeds, train subset and budget. The random-init encoder
is the pretraining run's own architecture (its operative_config.gin) with its tokenizer and vocab, so the
only difference is the pretrained weights. Prints per-seed test scores and their mean ± standard deviation,
and writes OUT_DIR/summary.json. The README's "Fine-tuning" section gives the commands and figures.

With `--learning_rates=1e-4,3e-4,1e-3` each initialisation runs every seed at every peak LR and keeps, as its
result, the LR whose mean dev score (the trainer's selection metric) over the seeds is highest; test scores
never take part in the choice. This is how the BERT and ELECTRA papers pick their fine-tuning LR, and it gives
each initialisation its own: a random encoder wants a larger step than a pretrained one.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from plm_tf.finetuning import model as model_lib  # noqa: E402
from plm_tf.finetuning.trainer import run_finetuning  # noqa: E402

SHARED_TASKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                            "tasks")
INITS = ("pretrained", "random")
METRICS = ("accuracy", "f1", "matthews_corrcoef")


def random_init_setup(pretrain_dir):
    """gin files and bindings that rebuild the pretraining run's encoder, untrained, with its tokenizer."""
    _, info = model_lib.restore_encoder(pretrain_dir)
    run_dir = os.path.dirname(info["checkpoint"])
    bindings = [f"finetune.tokenizer_kind = {info['tokenizer_kind']!r}"]
    if info["vocab_path"] is not None:
        bindings.append(f"finetune.vocab_path = {info['vocab_path']!r}")
    return [os.path.join(run_dir, "operative_config.gin")], bindings


def run_one(args, task, init, seed, bindings, random_setup, learning_rate=None):
    """One fine-tuning run; `learning_rate` (a string as given on the command line) overrides the recipe's."""
    run_name = f"lr{learning_rate}/seed{seed}" if learning_rate else f"seed{seed}"
    model_dir = os.path.join(args.out_dir, task, init, run_name)
    results_path = os.path.join(model_dir, "results.json")
    if args.reuse and os.path.exists(results_path):
        print(f"reusing {results_path}")
        with open(results_path) as f:
            return json.load(f)
    print(f"\n=== {task}: {init} init, seed {seed}" + (f", peak LR {learning_rate}" if learning_rate else "") + " ===",
          flush=True)
    bindings = bindings + [f"finetune.seed = {seed}"]
    if learning_rate:
        bindings.append(f"finetune.learning_rate = {float(learning_rate)!r}")
    if init == "pretrained":
        return run_finetuning([args.gin_file], bindings, os.path.join(args.tasks_root, task), model_dir,
                              args.pretrain_dir)
    gin_files, tokenizer_bindings = random_setup
    return run_finetuning(gin_files + [args.gin_file], tokenizer_bindings + bindings,
                          os.path.join(args.tasks_root, task), model_dir)


def choose_learning_rate(runs_by_lr):
    """(chosen LR, {LR: mean dev score}) from {LR: [results of each seed]}: the highest mean dev score of the
    trainer's selection metric, the earlier-listed LR on a tie."""
    dev_means = {lr: statistics.fmean(run["best"]["dev"][run["selection_metric"]] for run in runs)
                 for lr, runs in runs_by_lr.items()}
    return max(dev_means, key=dev_means.get), dev_means  # max keeps the first of equal scores


def mean_std(values):
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def print_table(summary):
    print("\n| task | test metric | majority | " + " | ".join(f"{init} init, mean ± std (per seed)" for init in INITS)
          + " |")
    print("|---|---|---|" + "---|" * len(INITS))
    for task, s in summary.items():
        for init, search in s.get("learning_rate_search", {}).items():
            means = ", ".join(f"{lr}: {mean:.4f}" for lr, mean in search["dev_means"].items())
            print(f"{task}, {init} init: peak LR {search['chosen']} chosen on mean dev score ({means})")
    for task, s in summary.items():
        for metric in METRICS:
            cells = []
            for init in INITS:
                runs = s.get(init, {})
                scores = [run["test"][metric] for run in runs.values() if run.get("test")]
                if not scores:
                    cells.append("-")
                    continue
                mean, std = mean_std(scores)
                cells.append(f"{mean:.4f} ± {std:.4f} (" + ", ".join(f"{v:.4f}" for v in scores) + ")")
            majority = s["majority_baseline"]["test"][metric]
            print(f"| {task} | {metric} | {majority:.4f} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrain_dir", required=True, help="model_dir of a `python -m plm_tf.train` run.")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--tasks_root", default=SHARED_TASKS)
    parser.add_argument("--tasks", default="spam,entailment")
    parser.add_argument("--gin_file", default="finetune/electra_small.gin")
    parser.add_argument("--max_train_examples", default="entailment=16000",
                        help="train subset size per task, e.g. spam=4474,entailment=16000 (unlisted = all).")
    parser.add_argument("--seeds", default="0,1,2", help="fine-tuning seeds (init, dropout, order, subset).")
    parser.add_argument("--num_epochs", type=int, default=3)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--gin_param", action="append", default=[])
    parser.add_argument("--inits", default=",".join(INITS), help="which initialisations to run, in order.")
    parser.add_argument("--learning_rates", default="",
                        help="peak LRs to try, e.g. 1e-4,3e-4,1e-3; each initialisation keeps the one with the best "
                             "mean dev score (default: the recipe's LR only).")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the results of runs whose OUT_DIR/<task>/<init>/[lr<LR>/]seed<n>/results.json "
                             "exists.")
    args = parser.parse_args()
    inits = args.inits.split(",")
    if not set(inits) <= set(INITS):
        parser.error(f"--inits must name some of {INITS}, got {args.inits!r}")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    learning_rates = [lr for lr in args.learning_rates.split(",") if lr]
    for lr in learning_rates:
        try:
            if not float(lr) > 0:
                raise ValueError
        except ValueError:
            parser.error(f"--learning_rates must be positive numbers, got {lr!r}")
    limits = dict(item.split("=") for item in args.max_train_examples.split(",") if item)
    random_setup = random_init_setup(args.pretrain_dir) if "random" in inits else None

    summary_path = os.path.join(args.out_dir, "summary.json")
    summary = {}
    if os.path.exists(summary_path):  # runs of other tasks, initialisations or seeds made earlier
        with open(summary_path) as f:
            summary = json.load(f)
    for task in args.tasks.split(","):
        bindings = [f"finetune.num_epochs = {args.num_epochs}", f"finetune.seq_len = {args.seq_len}"]
        if task in limits:
            bindings.append(f"finetune.max_train_examples = {int(limits[task])}")
        bindings += args.gin_param
        entry = summary.setdefault(task, {})
        for init in inits:
            runs_by_lr = {}
            for learning_rate in learning_rates or [None]:
                for seed in seeds:
                    results = run_one(args, task, init, seed, bindings, random_setup, learning_rate)
                    runs_by_lr.setdefault(learning_rate, {})[str(seed)] = results
            chosen = None
            if learning_rates:
                chosen, dev_means = choose_learning_rate({lr: list(runs.values()) for lr, runs in runs_by_lr.items()})
                entry.setdefault("learning_rate_search", {})[init] = {
                    "chosen": chosen, "dev_means": dev_means,
                    "test_means": {lr: statistics.fmean(run["test"][run["selection_metric"]] for run in runs.values())
                                   for lr, runs in runs_by_lr.items() if all(run.get("test") for run in runs.values())}}
            for seed, results in runs_by_lr[chosen].items():
                entry.update({"num_train_examples": results["num_train_examples"],
                              "hyperparameters": results["hyperparameters"],
                              "majority_baseline": results["majority_baseline"],
                              "pretrain_dir": os.path.abspath(args.pretrain_dir)})
                entry.setdefault(init, {})[seed] = {
                    "init": results["init"], "best": results["best"], "test": results.get("test"),
                    "wall_seconds": results["wall_seconds"]}
            os.makedirs(args.out_dir, exist_ok=True)
            with open(summary_path, "w") as f:
                json.dump(summary, f, indent=2)
    print_table(summary)


if __name__ == "__main__":
    main()
