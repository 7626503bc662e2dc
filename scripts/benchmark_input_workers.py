"""Input cost per worker with sharded input: 1, 2 and 4 local worker processes on 127.0.0.1.

For each worker count N it starts N processes forming a real `MultiWorkerMirroredStrategy` cluster
(TF_CONFIG on 127.0.0.1). Each builds its input pipeline exactly as the trainer does
(`distribution.input_context(strategy)` → `pretraining_dataset(..., input_shards=N)`), takes `--warmup`
batches, then times its share of `--global_batches` global batches (B = `--batch_size` examples each): wall
seconds and CPU seconds (user + system of the process, every tf.data thread included). CPU seconds are the
input *cost*: on a machine with fewer cores than workers the wall times include waiting for a core, the CPU
seconds do not.

Two layouts of the same text: "documents" (the corpus as one file: each worker reads every line and
tokenizes, packs and masks only its documents) and "files" (the corpus split by documents into `--files`
files: each worker reads only its files).

Prints one table per layout: per worker CPU s, examples/s; in total CPU s and examples/s; and the per-worker
cost relative to N = 1 (1/N is perfect). Says which machine and load average produced it.

    python scripts/benchmark_input_workers.py                   # embedded corpus, ELECTRA, B = 128, T = 128
    python scripts/benchmark_input_workers.py --workers=1,2 --global_batches=20
"""
import argparse
import gzip
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker(args):
    """One worker process: its pipeline's timed share, as one JSON line on stdout."""
    import tensorflow as tf

    from plm_tf.data import pipelines
    from plm_tf.training import distribution

    strategy = distribution.create_strategy("multi_worker_mirrored")
    layout = distribution.input_layout(strategy)
    dataset = pipelines.pretraining_dataset(
        objective=args.objective, corpus_paths=args.corpus_paths.split(","), seq_len=args.seq_len,
        batch_size=args.batch_size, seed=0, input_context=distribution.input_context(strategy),
        input_shards=layout.num_pipelines)
    iterator = iter(dataset)
    for _ in range(args.warmup * layout.local_replicas):
        next(iterator)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    examples = 0
    for _ in range(args.global_batches * layout.local_replicas):
        examples += int(next(iterator)["input_ids"].shape[0])
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print("RESULT " + json.dumps({"pipeline": layout.pipeline_id, "examples": examples, "wall_s": wall,
                                  "cpu_s": cpu, "tensorflow": tf.__version__}), flush=True)


def run_workers(count, corpus_paths, args):
    addresses = [f"127.0.0.1:{port}" for port in free_ports(count)]
    processes = []
    for index in range(count):
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                   TF_CONFIG=json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}))
        command = [sys.executable, os.path.abspath(__file__), "--worker", f"--corpus_paths={','.join(corpus_paths)}",
                   f"--objective={args.objective}", f"--seq_len={args.seq_len}", f"--batch_size={args.batch_size}",
                   f"--warmup={args.warmup}", f"--global_batches={args.global_batches}"]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for process in processes:
        stdout, stderr = process.communicate()
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        if process.returncode != 0 or not lines:
            raise SystemExit(f"a worker failed ({process.returncode}): {stderr.strip().splitlines()[-3:]}")
        results.append(json.loads(lines[-1][len("RESULT "):]))
    return sorted(results, key=lambda r: r["pipeline"])


def split_corpus(paths, count, folder):
    """The documents of `paths`, dealt round-robin into `count` gzip files (the same text, several files)."""
    documents = []
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            documents += [block for block in f.read().split("\n\n") if block.strip()]
    outputs = [os.path.join(folder, f"part-{i}.txt.gz") for i in range(count)]
    for i, output in enumerate(outputs):
        with gzip.open(output, "wt", encoding="utf-8") as f:
            f.write("\n\n".join(block.strip("\n") for block in documents[i::count]) + "\n")
    return outputs


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run")
    parser.add_argument("--corpus_paths", default=None, help="comma-separated corpus files (default: embedded)")
    parser.add_argument("--objective", default="electra")
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=128, help="global batch (divisible by every count)")
    parser.add_argument("--warmup", type=int, default=3, help="global batches before timing")
    parser.add_argument("--global_batches", type=int, default=30, help="global batches timed")
    parser.add_argument("--files", type=int, default=4, help="files of the 'files' layout")
    parser.add_argument("--json_out", default=None)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    sys.path.insert(0, REPO)
    from plm_tf.data import assets

    corpus = args.corpus_paths.split(",") if args.corpus_paths else [os.fspath(assets.default_corpus_path())]
    counts = [int(n) for n in args.workers.split(",")]
    print(f"machine: {machine()}; {args.objective}, global batch {args.batch_size} x {args.seq_len}, "
          f"{args.global_batches} global batches timed after {args.warmup}")
    report = {"machine": machine(), "settings": vars(args), "layouts": {}}
    with tempfile.TemporaryDirectory() as folder:
        layouts = {"documents": corpus, "files": split_corpus(corpus, args.files, folder)}
        for name, paths in layouts.items():
            rows = []
            for count in counts:
                load = os.getloadavg()[0]
                results = run_workers(count, paths, args)
                rows.append({"workers": count, "load_before": load, "per_worker": results,
                             "total_cpu_s": sum(r["cpu_s"] for r in results),
                             "total_examples_per_s": sum(r["examples"] for r in results)
                             / max(r["wall_s"] for r in results)})
            base = rows[0]["total_cpu_s"] / counts[0]
            print(f"\nlayout '{name}' ({len(paths)} file(s))")
            print("| workers | load before | CPU s per worker (mean) | examples/s per worker | total CPU s | "
                  "total examples/s | per-worker cost vs 1 worker (1/N ideal) |")
            print("|---|---|---|---|---|---|---|")
            for row in rows:
                per_worker_cpu = row["total_cpu_s"] / row["workers"]
                per_worker_rate = sum(r["examples"] / r["wall_s"] for r in row["per_worker"]) / row["workers"]
                print(f"| {row['workers']} | {row['load_before']:.2f} | {per_worker_cpu:.2f} | {per_worker_rate:.0f} | "
                      f"{row['total_cpu_s']:.2f} | {row['total_examples_per_s']:.0f} | "
                      f"{per_worker_cpu / base:.2f} (1/{row['workers']} = {1 / row['workers']:.2f}) |")
            report["layouts"][name] = rows
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
