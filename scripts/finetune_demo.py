"""Pretrained vs random-init fine-tuning on the shared spam and entailment tasks, with the majority baseline.

    python -m plm_tf.train --model_dir=/tmp/demo_pretrain            # the demo ELECTRA (a few minutes)
    python scripts/finetune_demo.py --pretrain_dir=/tmp/demo_pretrain --out_dir=/tmp/demo_finetune

Both runs of a task use the same recipe (gin/finetune/electra_small.gin unless --gin_file), the same
encoder architecture (the pretraining run's operative config; gin/electra_demo.gin for random init, which is
the same demo config), tokenizer, seed, train subset and budget. Prints a table and writes
OUT_DIR/summary.json.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from plm_tf.finetuning.trainer import run_finetuning  # noqa: E402

SHARED_TASKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                            "tasks")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrain_dir", required=True, help="model_dir of a `python -m plm_tf.train` run.")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--tasks_root", default=SHARED_TASKS)
    parser.add_argument("--tasks", default="spam,entailment")
    parser.add_argument("--gin_file", default="finetune/electra_small.gin")
    parser.add_argument("--random_init_gin", default="electra_demo.gin",
                        help="gin file giving the encoder config of the random-init run (the demo config).")
    parser.add_argument("--max_train_examples", default="spam=4474,entailment=8000",
                        help="train subset size per task, e.g. spam=4474,entailment=8000.")
    parser.add_argument("--num_epochs", type=int, default=3)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--gin_param", action="append", default=[])
    parser.add_argument("--inits", default="pretrained,random", help="which initialisations to run, in order.")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the results of runs whose OUT_DIR/<task>/<init>/results.json exists.")
    args = parser.parse_args()

    limits = dict(item.split("=") for item in args.max_train_examples.split(",") if item)
    summary_path = os.path.join(args.out_dir, "summary.json")
    summary = {}
    if os.path.exists(summary_path):  # runs of other tasks or initialisations made earlier
        with open(summary_path) as f:
            summary = json.load(f)
    for task in args.tasks.split(","):
        bindings = [f"finetune.num_epochs = {args.num_epochs}", f"finetune.seq_len = {args.seq_len}"]
        if task in limits:
            bindings.append(f"finetune.max_train_examples = {int(limits[task])}")
        bindings += args.gin_param
        task_dir = os.path.join(args.tasks_root, task)
        runs = {}
        for init in args.inits.split(","):
            print(f"\n=== {task}: {init} init ===", flush=True)
            model_dir = os.path.join(args.out_dir, task, init)
            results_path = os.path.join(model_dir, "results.json")
            if args.reuse and os.path.exists(results_path):
                with open(results_path) as f:
                    runs[init] = json.load(f)
                print(f"reusing {results_path}")
                continue
            if init == "pretrained":
                results = run_finetuning([args.gin_file], bindings, task_dir, model_dir, args.pretrain_dir)
            else:
                results = run_finetuning([args.random_init_gin, args.gin_file], bindings, task_dir, model_dir)
            runs[init] = results
        first = next(iter(runs.values()))
        summary[task] = summary.get(task, {})
        summary[task].update({
            "num_train_examples": first["num_train_examples"],
            "hyperparameters": first["hyperparameters"],
            "majority_baseline": first["majority_baseline"],
        })
        for init, results in runs.items():
            summary[task][init] = {"init": results["init"], "best": results["best"], "test": results.get("test"),
                                   "wall_seconds": results["wall_seconds"]}
        os.makedirs(args.out_dir, exist_ok=True)
        with open(summary_path, "w") as f:
            json.dump(summary, f, indent=2)

    inits = ["pretrained", "random"]
    print("\n| task | split | metric | majority | " + " | ".join(f"{init} init" for init in inits) + " |")
    print("|---|---|---|---|" + "---|" * len(inits))
    for task, s in summary.items():
        for split in ("dev", "test"):
            majority = s["majority_baseline"].get(split)
            for metric in ("accuracy", "f1", "matthews_corrcoef"):
                cells = []
                for init in inits:
                    run = s.get(init) or {}
                    scores = (run.get("best") or {}).get("dev", {}) if split == "dev" else (run.get("test") or {})
                    cells.append(f"{scores[metric]:.4f}" if metric in scores else "-")
                print(f"| {task} | {split} | {metric} | {majority[metric]:.4f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
