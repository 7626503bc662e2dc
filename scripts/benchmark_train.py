"""Train-step throughput and model-FLOPs utilisation of each model family at small sizes, float32 and
mixed_bfloat16, on this machine.

    python scripts/benchmark_train.py [--batch_size=16 --seq_len=128 --steps=5]
    python scripts/benchmark_train.py --size=base --seq_len=512 --batch_size=8 --steps=2   # published base shapes

Each row times the trainer's own step function (`plm_tf.training.train_step`, the recipe's optimizer) on a
fixed synthetic batch, so the figures measure compute only (the input pipeline is benchmarked by
scripts/benchmark_pipeline.py). Model FLOPs per step = 3 × forward FLOPs (forward + backward), with forward
FLOPs = 2 × multiply-adds of every matmul the model runs (encoder layers, projections, attention scores and
mixing, the heads at the positions they read). MFU divides achieved FLOP/s by the peak measured here with
a large tf.matmul in the same dtype.
"""
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("batch_size", 16, "sequences per step")
flags.DEFINE_integer("seq_len", 128, "tokens per sequence")
flags.DEFINE_integer("steps", 5, "timed steps per row (after 2 warm-up steps)")
flags.DEFINE_list("families", ["electra", "bert", "roberta", "albert"], "families to benchmark")
flags.DEFINE_enum("size", "small", ["small", "base"],
                  "small: every family at ELECTRA-Small's shape; base: each family's published base gin file "
                  "(ELECTRA-Base 12 × 768 with its 1/3 generator, BERT/RoBERTa-Base, ALBERT-Base E 128)")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "precision policies")
FLAGS = flags.FLAGS

# Small sizes: ELECTRA-Small's shape (L 12, H 256, 4 heads, I 1024, E 128) for every family.
SMALL = [
    "encoder_config.num_layers = 12",
    "encoder_config.hidden_size = 256",
    "encoder_config.num_heads = 4",
    "encoder_config.intermediate_size = 1024",
]
FAMILY_GIN = {
    "electra": ("electra_small.gin", []),
    "bert": ("bert_base.gin", SMALL),
    "roberta": ("roberta_base.gin", SMALL),
    "albert": ("albert_base.gin", SMALL),
}


def machine_description():
    import tensorflow as tf
    import keras

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, TensorFlow {tf.__version__}, "
            f"Keras {keras.__version__}")


def matmul_peak(dtype, size=2048, repeats=10):
    """FLOP/s of a size×size matmul in `dtype` (the measured peak MFU is relative to)."""
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype=tf.float32)
    a = tf.cast(a, dtype)

    @tf.function
    def run():
        out = a
        for _ in range(repeats):
            out = tf.matmul(out, a)
        return tf.reduce_sum(tf.cast(out[:1, :1], tf.float32))

    run()
    best = float("inf")
    for _ in range(3):  # the best of three: other processes on the machine only ever slow a run down
        start = time.perf_counter()
        run().numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 * repeats / best


def encoder_forward_flops(encoder, seq_len):
    """Forward FLOPs of one sequence through an encoder tower (no embedding lookups)."""
    h, t = encoder.hidden_size, seq_len
    per_block = 2 * t * (4 * h * h + 2 * h * encoder.intermediate_size) + 2 * 2 * t * t * h
    flops = per_block * len(encoder.block_schedule)
    if encoder.embedding_projection is not None:
        flops += 2 * t * encoder.embedding_size * h
    return flops


def model_forward_flops(model, seq_len, predictions):
    from plm_tf.models.pretraining import ElectraPretrainer

    vocab = model.encoder_config["vocab_size"]
    embedding = model.encoder_config["embedding_size"]

    def mlm_head(hidden):
        return 2 * predictions * (hidden * embedding + embedding * vocab)

    if isinstance(model, ElectraPretrainer):
        h = model.discriminator.hidden_size
        return (encoder_forward_flops(model.discriminator, seq_len) + encoder_forward_flops(model.generator, seq_len)
                + mlm_head(model.generator.hidden_size) + 2 * seq_len * (h * h + h))
    flops = encoder_forward_flops(model.encoder, seq_len) + mlm_head(model.encoder.hidden_size)
    if model.sentence_head is not None:
        flops += 2 * model.encoder.hidden_size * (model.encoder.hidden_size + 2)
    return flops


def synthetic_batch(objective, batch, seq_len, predictions, vocab):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    features = {
        "input_ids": rng.integers(5, vocab, (batch, seq_len)).astype("int32"),
        "input_mask": np.ones((batch, seq_len), "int32"),
        "segment_ids": np.zeros((batch, seq_len), "int32"),
        "masked_lm_positions": np.sort(rng.choice(np.arange(1, seq_len), (batch, predictions)), -1).astype("int32"),
        "masked_lm_ids": rng.integers(5, vocab, (batch, predictions)).astype("int32"),
        "masked_lm_weights": np.ones((batch, predictions), "float32"),
        "sentence_order_label": rng.integers(0, 2, batch).astype("int32"),
        "next_sentence_label": rng.integers(0, 2, batch).astype("int32"),
    }
    return {k: tf.constant(v) for k, v in features.items()}


def benchmark_row(family, policy):
    import keras
    import tensorflow as tf

    from plm_tf.gin_config import parse_gin
    from plm_tf.models.builders import build_pretraining_model
    from plm_tf.training import precision
    from plm_tf.training.optimizers import create_optimizer
    from plm_tf.training.train_step import make_train_loop

    gin_file, bindings = FAMILY_GIN[family]
    if FLAGS.size == "base":
        gin_file, bindings = f"{family}_base.gin", []
    parse_gin([gin_file], bindings)
    precision.set_precision(policy)
    strategy = tf.distribute.get_strategy()
    model = build_pretraining_model()
    model.build()
    objective = getattr(model, "objective", "electra")
    optimizer = create_optimizer()
    optimizer.build(model.trainable_variables)
    predictions = int((0.15 + 0.005) * FLAGS.seq_len)
    batch = synthetic_batch(objective, FLAGS.batch_size, FLAGS.seq_len, predictions, model.encoder_config["vocab_size"])
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    iterator = iter(dataset)
    train_loop = make_train_loop(strategy, model, optimizer, objective, 0, 1)
    train_loop(iterator, tf.constant(2), tf.constant(0, tf.int64))[0].numpy()  # trace + warm up
    seconds = float("inf")
    for repeat in range(3):  # best of three windows, as for the peak
        start = time.perf_counter()
        train_loop(iterator, tf.constant(FLAGS.steps), tf.constant(2 + repeat * FLAGS.steps, tf.int64))[0].numpy()
        seconds = min(seconds, (time.perf_counter() - start) / FLAGS.steps)
    flops = 3 * model_forward_flops(model, FLAGS.seq_len, predictions) * FLAGS.batch_size
    keras.mixed_precision.set_global_policy("float32")
    return seconds, flops / seconds


def main(argv):
    del argv
    import tensorflow as tf

    print(f"machine: {machine_description()}")
    peaks = {"float32": matmul_peak(tf.float32), "mixed_bfloat16": matmul_peak(tf.bfloat16)}
    for policy, peak in peaks.items():
        print(f"measured matmul peak ({policy}): {peak / 1e9:,.1f} GFLOP/s")
    print(f"{FLAGS.size} shapes; batch {FLAGS.batch_size} × length {FLAGS.seq_len}; each row: best of 3 windows of {FLAGS.steps} steps\n")
    print(f"{'family':<9} {'precision':<15} {'step s':>8} {'seq/s':>8} {'tokens/s':>10} {'GFLOP/s':>9} {'MFU':>6}")
    for family in FLAGS.families:
        for policy in FLAGS.precisions:
            seconds, achieved = benchmark_row(family, policy)
            print(f"{family:<9} {policy:<15} {seconds:>8.3f} {FLAGS.batch_size / seconds:>8.1f} "
                  f"{FLAGS.batch_size * FLAGS.seq_len / seconds:>10,.0f} {achieved / 1e9:>9.1f} "
                  f"{achieved / peaks[policy]:>6.1%}", flush=True)


if __name__ == "__main__":
    app.run(main)
