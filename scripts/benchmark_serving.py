"""Serving speed of an exported ELECTRA discriminator against calling the Keras model in process.

Builds the discriminator of `--gin_file` (default gin/electra_small.gin: ELECTRA-Small, 12 layers, H 256, E 128)
with random weights and the embedded WordPiece vocabulary (`encoder_config.vocab_size` = its size), exports it
with `plm_tf.export.exporter.export_saved_model`, loads it back with `tf.saved_model.load` and times:

    keras eager        discriminator + head called eagerly on int32 ids [B, T]
    keras tf.function  the same call compiled once with tf.function (what an in-process server would do)
    saved token_ids    the SavedModel's `token_ids` signature on the same ids
    saved text         the SavedModel's `serving_default` on raw strings: tokenize, truncate, pad, run, score
    hf eager (torch)   the peer: `transformers.ElectraForPreTraining` of the same shape (random weights) in
                       PyTorch eager under `torch.inference_mode()`, on the same ids (with `--hf_peer`, the
                       default when torch and transformers are installed: the `hf` extra)

at batch 1 (latency: median and p99 over `--latency_runs` calls, in ms) and at batch 32 (throughput in
sequences/s over `--throughput_runs` calls). All inputs are T = `--max_seq_length` tokens long (the texts are
long enough to be truncated to T), so the rows do the same network work. With the peer it also prints the
SavedModel paths' batch-1 latency as ratios to the peer's (≤ 1 means plm_tf's serving is at least as fast). It prints the machine (CPU model,
cores, load average) and the versions. Times include the Python call overhead of each path.

    python scripts/benchmark_serving.py
    python scripts/benchmark_serving.py --latency_runs=50 --json_out=/tmp/serving.json
"""
import json
import os
import platform
import shutil
import statistics
import tempfile
import time

from absl import app, flags, logging

flags.DEFINE_string("gin_file", "electra_small.gin", "gin file of the ELECTRA model to export.")
flags.DEFINE_integer("max_seq_length", 128, "T of the export and of every timed input.")
flags.DEFINE_integer("throughput_batch", 32, "batch size of the throughput measurement.")
flags.DEFINE_integer("latency_runs", 100, "timed batch-1 calls per path.")
flags.DEFINE_integer("throughput_runs", 10, "timed batch calls per path.")
flags.DEFINE_integer("warmup", 3, "untimed calls before each measurement.")
flags.DEFINE_string("json_out", None, "also write the results here as JSON.")
flags.DEFINE_bool("hf_peer", True, "also time transformers' ElectraForPreTraining (PyTorch eager), if installed.")
FLAGS = flags.FLAGS


def machine():
    """CPU model, cores, load average and library versions (dict of str / numbers)."""
    import keras
    import tensorflow as tf
    import tensorflow_text

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu, "cores_available": cores, "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "tensorflow": tf.__version__,
        "tensorflow_text": tensorflow_text.__version__, "keras": keras.__version__,
    }


def time_calls(fn, runs, warmup):
    """Seconds of each of `runs` calls of fn() after `warmup` untimed calls (fn must return a tensor/dict)."""
    for _ in range(warmup):
        _block(fn())
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - start)
    return times


def _block(result):
    """Forces the result to host memory so asynchronous execution is inside the timing."""
    values = result.values() if isinstance(result, dict) else [result]
    for value in values:
        value.numpy()


def percentile(values, q):
    """The q-th percentile (0..100) by linear interpolation between order statistics."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def hf_peer(encoder, ids):
    """fn(n) timing `transformers.ElectraForPreTraining` (PyTorch eager, inference mode) on ids[n], or None when
    torch / transformers are not installed. Same shape as `encoder`, random weights."""
    try:
        import torch
        import transformers
    except ImportError:
        print("hf eager (torch): skipped, torch / transformers are not installed (pip install -e .[hf])")
        return None
    config = transformers.ElectraConfig(
        vocab_size=encoder.vocab_size, embedding_size=encoder.embedding_size, hidden_size=encoder.hidden_size,
        num_hidden_layers=encoder.num_layers, num_attention_heads=encoder.num_heads,
        intermediate_size=encoder.intermediate_size, max_position_embeddings=512, hidden_act="gelu")
    model = transformers.ElectraForPreTraining(config).eval()
    torch_ids = {n: tuple(torch.from_numpy(t.numpy()).long() for t in value) for n, value in ids.items()}

    class _Done:  # what `_block` expects: something with .numpy()
        def __init__(self, tensor):
            self.tensor = tensor

        def numpy(self):
            return self.tensor.numpy()

    def call(n):
        word_ids, mask, type_ids = torch_ids[n]
        with torch.inference_mode():
            return _Done(model(input_ids=word_ids, attention_mask=mask, token_type_ids=type_ids).logits)

    return call


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the export's tokenizer ops)

    from plm_tf.export import serving
    from plm_tf.export.exporter import build_from_gin, export_saved_model

    info = machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    model, tokenizer = build_from_gin([FLAGS.gin_file], ["encoder_config.vocab_size = None"])
    _, encoder, head = serving.serving_parts(model)
    print(f"model: {FLAGS.gin_file} discriminator, {encoder.num_layers} layers, H={encoder.hidden_size}, "
          f"E={encoder.embedding_size}, V={encoder.vocab_size}, "
          f"{sum(int(tf.size(v)) for v in encoder.variables + head.variables):,} parameters (random init)", flush=True)

    T, B = FLAGS.max_seq_length, FLAGS.throughput_batch
    export_dir = tempfile.mkdtemp(prefix="plm_tf_benchmark_serving_")
    try:
        start = time.perf_counter()
        export_saved_model(model, tokenizer, export_dir, max_seq_length=T)
        export_seconds = time.perf_counter() - start
        start = time.perf_counter()
        loaded = tf.saved_model.load(export_dir)
        load_seconds = time.perf_counter() - start
        print(f"export {export_seconds:.1f} s, load {load_seconds:.1f} s", flush=True)

        text = "It is a truth universally acknowledged, that a single man in possession of a good fortune, " \
               "must be in want of a wife. " * 8
        texts = {n: tf.constant([text] * n) for n in (1, B)}
        ids = {}
        for n in (1, B):
            features = serving.pack_segments([tokenizer.tokenize(texts[n])], T, tokenizer.cls_id, tokenizer.sep_id,
                                             tokenizer.pad_id)
            if not bool(tf.reduce_all(features["truncated"])):
                raise RuntimeError("the benchmark text must fill max_seq_length")
            ids[n] = (features["input_word_ids"], features["input_mask"], features["input_type_ids"])

        def keras_call(word_ids, mask, type_ids):
            out = encoder({"input_ids": word_ids, "input_mask": mask, "segment_ids": type_ids}, training=False)
            return head(out["sequence_output"])

        keras_function = tf.function(keras_call)
        token_ids = loaded.signatures["token_ids"]
        text_signature = loaded.signatures["serving_default"]
        paths = {
            "keras eager": lambda n: keras_call(*ids[n]),
            "keras tf.function": lambda n: keras_function(*ids[n]),
            "saved token_ids": lambda n: token_ids(input_word_ids=ids[n][0], input_mask=ids[n][1],
                                                   input_type_ids=ids[n][2])["logits"],
            "saved text": lambda n: text_signature(text=texts[n]),
        }
        peer = hf_peer(encoder, ids) if FLAGS.hf_peer else None
        if peer is not None:
            paths["hf eager (torch)"] = peer
        results = {"machine": info, "gin_file": FLAGS.gin_file, "max_seq_length": T, "throughput_batch": B,
                   "export_seconds": export_seconds, "load_seconds": load_seconds, "paths": {}}
        print(f"\n{'path':<20s} {'b=1 median ms':>14s} {'b=1 p99 ms':>11s} {f'b={B} seq/s':>11s} "
              f"{f'b={B} ms/batch':>14s}")
        for name, call in paths.items():
            latency = time_calls(lambda: call(1), FLAGS.latency_runs, FLAGS.warmup)
            batch = time_calls(lambda: call(B), FLAGS.throughput_runs, FLAGS.warmup)
            row = {"latency_median_ms": 1000 * statistics.median(latency),
                   "latency_p99_ms": 1000 * percentile(latency, 99),
                   "throughput_seq_per_s": B * len(batch) / sum(batch),
                   "batch_median_ms": 1000 * statistics.median(batch)}
            results["paths"][name] = row
            print(f"{name:<20s} {row['latency_median_ms']:>14.1f} {row['latency_p99_ms']:>11.1f} "
                  f"{row['throughput_seq_per_s']:>11.1f} {row['batch_median_ms']:>14.1f}", flush=True)
        if peer is not None:
            reference = results["paths"]["hf eager (torch)"]
            for name in ("saved token_ids", "saved text"):
                for key in ("latency_median_ms", "latency_p99_ms"):
                    ratio = results["paths"][name][key] / reference[key]
                    results["paths"][name][f"{key}_vs_hf"] = ratio
                print(f"{name} / hf eager: batch-1 median {results['paths'][name]['latency_median_ms_vs_hf']:.2f}, "
                      f"p99 {results['paths'][name]['latency_p99_ms_vs_hf']:.2f}")
        results["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
        print(f"\nload average (1 min) at the end: {results['machine']['load_average_1m_end']}")
        if FLAGS.json_out:
            with open(FLAGS.json_out, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        shutil.rmtree(export_dir, ignore_errors=True)


if __name__ == "__main__":
    app.run(main)
