"""Throughput of the pretraining input pipelines: examples/s and real tokens/s.

For every objective (mlm, mlm_nsp, mlm_sop, electra) and sequence length (128, 512) it times
  * "text": raw text with in-graph tokenization, packing and dynamic masking (`pretraining_dataset`);
  * "tfrecord": pre-tokenized, pre-masked TFRecords written by `write_static_examples` (the static baseline).
Each measurement skips `--warmup` batches (tracing, shuffle-buffer fill), then times `--batches` batches.
With `--train_step` it also times one ELECTRA-Small pretraining step (generator 1/4, published config,
vocab 30,522, AdamW, batch 128 x 128) on the same machine, so the pipeline/step ratio can be stated.

Example:
    python scripts/benchmark_pipeline.py --train_step
    python scripts/benchmark_pipeline.py --objectives=electra --seq_lens=128 --batch_size=128
"""
import json
import os
import platform
import tempfile
import time

from absl import app
from absl import flags

import tensorflow as tf

from plm_tf.data import pipelines

FLAGS = flags.FLAGS
flags.DEFINE_list("objectives", list(pipelines.OBJECTIVES), "Objectives to time.")
flags.DEFINE_list("seq_lens", ["128", "512"], "Sequence lengths.")
flags.DEFINE_list("sources", ["text", "tfrecord"], "Pipelines to time: text and/or tfrecord.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("warmup", 5, "Batches skipped before timing.")
flags.DEFINE_integer("batches", 30, "Batches timed.")
flags.DEFINE_list("corpus_paths", None, "Corpus; default: the embedded corpus.")
flags.DEFINE_bool("train_step", False, "Also time an ELECTRA-Small train step (batch 128, length 128).")
flags.DEFINE_string("json_out", None, "Optional path for the results as JSON.")


def machine():
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "cores_available": cores, "cpu_count": os.cpu_count(), "tensorflow": tf.__version__,
            "python": platform.python_version()}


def time_dataset(ds, warmup, batches):
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    tokens = 0
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
        tokens += int(tf.reduce_sum(batch["input_mask"]))
    seconds = time.perf_counter() - start
    n = batches * int(batch["input_ids"].shape[0])
    return {"examples_per_s": n / seconds, "tokens_per_s": tokens / seconds,
            "batches_per_s": batches / seconds}


def electra_small_step_seconds(batch, steps=5):
    """Seconds per ELECTRA-Small train step (forward, backward, AdamW) on `batch`."""
    import keras
    from plm_tf.models import objectives
    from plm_tf.models.configs import encoder_config
    from plm_tf.models.pretraining import ElectraPretrainer

    config = encoder_config(vocab_size=30522, hidden_size=256, num_layers=12, num_heads=4, intermediate_size=1024,
                            embedding_size=128, use_pooler=False)
    model = ElectraPretrainer(config, generator_hidden_fraction=0.25)
    optimizer = keras.optimizers.AdamW(learning_rate=1e-4, weight_decay=0.01, epsilon=1e-6)

    @tf.function
    def step(features, seed):
        with tf.GradientTape() as tape:
            outputs = model(features, training=True, sampling_seed=seed)
            terms, _ = objectives.loss_terms("electra", features, outputs)
            loss, _ = objectives.total_loss(terms, {k: d for k, (_, d) in terms.items()})
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    seed = tf.constant([0, 1], tf.int32)
    for _ in range(2):
        step(batch, seed).numpy()
    start = time.perf_counter()
    for _ in range(steps):
        step(batch, seed).numpy()
    return (time.perf_counter() - start) / steps


def main(argv):
    del argv
    info = machine()
    print("machine:", json.dumps(info))
    results = []
    corpus_paths = FLAGS.corpus_paths
    tmp = tempfile.mkdtemp(prefix="plm_bench_")
    for seq_len in [int(s) for s in FLAGS.seq_lens]:
        for objective in FLAGS.objectives:
            common = dict(seq_len=seq_len, batch_size=FLAGS.batch_size)
            if "text" in FLAGS.sources:
                ds = pipelines.pretraining_dataset(objective, corpus_paths=corpus_paths, **common)
                r = time_dataset(ds, FLAGS.warmup, FLAGS.batches)
                results.append(dict(source="text", objective=objective, **common, **r))
                print(json.dumps(results[-1]))
            if "tfrecord" in FLAGS.sources:
                prefix = os.path.join(tmp, f"{objective}_{seq_len}")
                paths, count = pipelines.write_static_examples(prefix, objective, corpus_paths=corpus_paths,
                                                               seq_len=seq_len, dupe_factor=1, num_shards=4)
                if count < FLAGS.batch_size:
                    print(f"skipping tfrecord {objective} {seq_len}: only {count} examples")
                    continue
                ds = pipelines.pretraining_dataset(objective, masking="static", static_paths=paths, **common)
                r = time_dataset(ds, FLAGS.warmup, FLAGS.batches)
                results.append(dict(source="tfrecord", objective=objective, **common, **r))
                print(json.dumps(results[-1]))
    report = {"machine": info, "pipelines": results}
    if FLAGS.train_step:
        batch = next(iter(pipelines.pretraining_dataset("electra", corpus_paths=corpus_paths, seq_len=128,
                                                        batch_size=128)))
        seconds = electra_small_step_seconds(batch)
        report["electra_small_train_step"] = {"seconds_per_step": seconds, "examples_per_s": 128 / seconds,
                                              "batch_size": 128, "seq_len": 128}
        print("electra_small_train_step:", json.dumps(report["electra_small_train_step"]))
        for r in results:
            if r["objective"] == "electra" and r["seq_len"] == 128 and r["batch_size"] == 128:
                print(f"ELECTRA {r['source']} pipeline at 128 x 128 delivers batches "
                      f"{r['batches_per_s'] * seconds:.1f}x faster than an ELECTRA-Small step consumes them")
    print("\n| source | objective | seq_len | batch | examples/s | tokens/s |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['source']} | {r['objective']} | {r['seq_len']} | {r['batch_size']} | "
              f"{r['examples_per_s']:,.0f} | {r['tokens_per_s']:,.0f} |")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    app.run(main)
