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
    args = parser.parse_args()

    limits = dict(item.split("=") for item in args.max_train_examples.split(",") if item)
    summary = {}
    for task in args.tasks.split(","):
        bindings = [f"finetune.num_epochs = {args.num_epochs}", f"finetune.seq_len = {args.seq_len}"]
        if task in limits:
            bindings.append(f"finetune.max_train_examples = {int(limits[task])}")
        bindings += args.gin_param
        task_dir = os.path.join(args.tasks_root, task)
        runs = {}
        for init in ("pretrained", "random"):
            print(f"\n=== {task}: {init} init ===", flush=True)
            model_dir = os.path.join(args.out_dir, task, init)
            if init == "pretrained":
                results = run_finetuning([args.gin_file], bindings, task_dir, model_dir, args.pretrain_dir)
            else:
                results = run_finetuning([args.random_init_gin, args.gin_file], bindings, task_dir, model_dir)
            runs[init] = results
        summary[task] = {
            "num_train_examples": runs["pretrained"]["num_train_examples"],
            "hyperparameters": runs["pretrained"]["hyperparameters"],
            "majority_baseline": runs["pretrained"]["majority_baseline"],
            "pretrained": {"best": runs["pretrained"]["best"], "test": runs["pretrained"].get("test"),
                           "wall_seconds": runs["pretrained"]["wall_seconds"]},
            "random": {"best": runs["random"]["best"], "test": runs["random"].get("test"),
                       "wall_seconds": runs["random"]["wall_seconds"]},
        }
        os.makedirs(args.out_dir, exist_ok=True)
        with open(os.path.join(args.out_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)

    print("\n| task | split | metric | majority | random init | pretrained |")
    print("|---|---|---|---|---|---|")
    for task, s in summary.items():
        for split, key in (("dev", "best"), ("test", "test")):
            majority = s["majority_baseline"].get(split)
            for metric in ("accuracy", "f1", "matthews_corrcoef"):
                rand = s["random"][key]["dev"][metric] if key == "best" else (s["random"]["test"] or {}).get(metric)
                pre = s["pretrained"][key]["dev"][metric] if key == "best" else (s["pretrained"]["test"] or {}).get(metric)
                print(f"| {task} | {split} | {metric} | {majority[metric]:.4f} | {rand:.4f} | {pre:.4f} |")


if __name__ == "__main__":
    main()
