"""Pretrained vs random-init fine-tuning on the shared spam and entailment tasks, with the majority baseline.

    python -m plm_tf.train --model_dir=/tmp/demo_pretrain            # any `python -m plm_tf.train` run
    python scripts/finetune_demo.py --pretrain_dir=/tmp/demo_pretrain --out_dir=/tmp/demo_finetune

For each task, initialisation and seed it fine-tunes once; both initialisations of a task use the same recipe
(gin/finetune/electra_small.gin unless --gin_file), seeds, train subset and budget. The random-init encoder
is the pretraining run's own architecture (its operative_config.gin) with its tokenizer and vocab, so the
only difference is the pretrained weights. Prints per-seed test scores and their mean ± standard deviation,
and writes OUT_DIR/summary.json. The README's "Fine-tuning" section gives the commands and figures.
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


def run_one(args, task, init, seed, bindings, random_setup):
    model_dir = os.path.join(args.out_dir, task, init, f"seed{seed}")
    results_path = os.path.join(model_dir, "results.json")
    if args.reuse and os.path.exists(results_path):
        print(f"reusing {results_path}")
        with open(results_path) as f:
            return json.load(f)
    print(f"\n=== {task}: {init} init, seed {seed} ===", flush=True)
    bindings = bindings + [f"finetune.seed = {seed}"]
    if init == "pretrained":
        return run_finetuning([args.gin_file], bindings, os.path.join(args.tasks_root, task), model_dir,
                              args.pretrain_dir)
    gin_files, tokenizer_bindings = random_setup
    return run_finetuning(gin_files + [args.gin_file], tokenizer_bindings + bindings,
                          os.path.join(args.tasks_root, task), model_dir)


def mean_std(values):
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def print_table(summary):
    print("\n| task | test metric | majority | " + " | ".join(f"{init} init, mean ± std (per seed)" for init in INITS)
          + " |")
    print("|---|---|---|" + "---|" * len(INITS))
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
    parser.add_argument("--reuse", action="store_true",
                        help="keep the results of runs whose OUT_DIR/<task>/<init>/seed<n>/results.json exists.")
    args = parser.parse_args()
    inits = args.inits.split(",")
    if not set(inits) <= set(INITS):
        parser.error(f"--inits must name some of {INITS}, got {args.inits!r}")
    seeds = [int(seed) for seed in args.seeds.split(",")]
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
            for seed in seeds:
                results = run_one(args, task, init, seed, bindings, random_setup)
                entry.update({"num_train_examples": results["num_train_examples"],
                              "hyperparameters": results["hyperparameters"],
                              "majority_baseline": results["majority_baseline"],
                              "pretrain_dir": os.path.abspath(args.pretrain_dir)})
                entry.setdefault(init, {})[str(seed)] = {
                    "init": results["init"], "best": results["best"], "test": results.get("test"),
                    "wall_seconds": results["wall_seconds"]}
                os.makedirs(args.out_dir, exist_ok=True)
                with open(summary_path, "w") as f:
                    json.dump(summary, f, indent=2)
    print_table(summary)


if __name__ == "__main__":
    main()
