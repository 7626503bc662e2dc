"""ELECTRA-Small pretraining step, side by side: plm_tf against Hugging Face `transformers` (PyTorch eager and
`torch.compile`) and keras-hub backbones where installed, each configuration in a fresh process, interleaved
over repetitions.

    python scripts/benchmark_compare.py                       # every configuration, 2 repetitions
    python scripts/benchmark_compare.py --configs=plm_tf_fp32,hf_eager_fp32 --repeats=1

The step (same for every implementation): ELECTRA-Small (12 × 256, 4 heads, FFN 1024, embedding 128, vocab
30,522), generator 1/4 as wide (64, 1 head, FFN 256) sharing the embeddings, dropout 0.1, batch 32 × 128 of
random ids with 19 masked positions (int((0.15 + 0.005) × 128), google-research/electra's
max_predictions_per_seq); generator MLM loss at the masked positions, Gumbel-max samples, discriminator
replaced-token loss on every token, loss = MLM + 50 × RTD; AdamW (lr 5e-4, weight decay 0.01 except
LayerNorm and biases, ε 1e-6) with global-norm clipping 1.0. plm_tf runs its own trainer step
(`plm_tf.training.train_step.make_train_loop`, gin/electra_small.gin); the PyTorch step is written here from
the same description with `transformers`' ELECTRA modules; the keras-hub step uses two `ElectraBackbone`s
(whose embeddings cannot be shared: the generator keeps its own tables, a little more optimizer work) with the
heads written here.

For every configuration: the median of `--steps` timed steps (after warm-up and compilation), tokens/s,
model-FLOPs utilisation against the matmul peak measured in the same process and dtype, the process's peak RSS
and how busy the cores were during the timed steps (process CPU time / wall time / cores). The load average
before each configuration is printed: on shared machines only the ratios of one interleaved run count. The
last table gives each plm_tf figure as a ratio to the best peer of the same precision. `plm_tf_bf16_loop10` runs
10 updates per call of the trainer's loop (`pretrain.steps_per_loop = 10`) and reports per update, to compare
with one update per call.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, SEQ_LEN, PREDICTIONS, VOCAB = 32, 128, 19, 30522
CONFIGS = ("plm_tf_fp32", "plm_tf_bf16", "plm_tf_bf16_loop10", "hf_eager_fp32", "hf_eager_bf16", "hf_compile_fp32",
           "hf_compile_bf16", "keras_hub_bf16")
DISCRIMINATOR = dict(hidden=256, heads=4, intermediate=1024, layers=12, embedding=128)
GENERATOR = dict(hidden=64, heads=1, intermediate=256, layers=12, embedding=128)


def forward_flops(tower, seq_len=SEQ_LEN):
    """Forward FLOPs of one sequence through a tower (matmuls only), as scripts/benchmark_train.py counts."""
    h, t = tower["hidden"], seq_len
    per_layer = 2 * t * (4 * h * h + 2 * h * tower["intermediate"]) + 4 * t * t * h
    return per_layer * tower["layers"] + 2 * t * tower["embedding"] * h


def step_flops():
    """Model FLOPs of one step: 3 × forward (forward + backward) over the batch."""
    generator_head = 2 * PREDICTIONS * (GENERATOR["hidden"] * GENERATOR["embedding"] + GENERATOR["embedding"] * VOCAB)
    discriminator_head = 2 * SEQ_LEN * (DISCRIMINATOR["hidden"] ** 2 + DISCRIMINATOR["hidden"])
    forward = forward_flops(DISCRIMINATOR) + forward_flops(GENERATOR) + generator_head + discriminator_head
    return 3 * forward * BATCH


def random_batch():
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(5, VOCAB, (BATCH, SEQ_LEN)).astype("int32")
    positions = np.sort(np.stack([rng.choice(np.arange(1, SEQ_LEN), PREDICTIONS, replace=False)
                                  for _ in range(BATCH)]), -1).astype("int32")
    labels = np.take_along_axis(ids, positions, 1)
    masked = ids.copy()
    np.put_along_axis(masked, positions, 4, 1)  # [MASK]
    return {"input_ids": masked, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids),
            "masked_lm_positions": positions, "masked_lm_ids": labels,
            "masked_lm_weights": np.ones(positions.shape, "float32")}


def timed(step, warmup, steps):
    """(median seconds, CPU busy fraction) of `steps` calls of `step` after `warmup` calls."""
    for _ in range(warmup):
        step()
    times = []
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    busy = (time.process_time() - cpu_before) / (time.perf_counter() - wall_before) / len(os.sched_getaffinity(0))
    return statistics.median(times), busy


# ----- plm_tf ---------------------------------------------------------------------------------------------

def run_plm_tf(bf16, args, updates_per_call=1):
    """One update per call of the trainer's loop, or `updates_per_call` (as with `pretrain.steps_per_loop`);
    "seconds" is per update either way."""
    sys.path.insert(0, REPO)
    import tensorflow as tf

    from plm_tf.gin_config import parse_gin
    from plm_tf.models.builders import build_pretraining_model
    from plm_tf.training import precision
    from plm_tf.training.optimizers import create_optimizer
    from plm_tf.training.train_step import make_train_loop
    from scripts.benchmark_train import matmul_peak

    policy = "mixed_bfloat16" if bf16 else "float32"
    peak = matmul_peak(tf.bfloat16 if bf16 else tf.float32)
    parse_gin(["electra_small.gin"], [f"encoder_config.vocab_size = {VOCAB}"])
    precision.set_precision(policy)
    model = build_pretraining_model()
    model.build()
    optimizer = create_optimizer()
    optimizer.build(model.trainable_variables)
    batch = {k: tf.constant(v) for k, v in random_batch().items()}
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    loop = make_train_loop(tf.distribute.get_strategy(), model, optimizer, "electra", 0, 1)
    counter = [0]

    def step():
        loop(iterator, tf.constant(updates_per_call), tf.constant(counter[0], tf.int64))[0].numpy()
        counter[0] += updates_per_call

    if updates_per_call == 1:
        seconds, busy = timed(step, args.warmup, args.steps)
    else:  # about as many updates as the single-update rows time, in at least 3 calls
        calls = max(3, -(-args.steps // updates_per_call))
        seconds, busy = timed(step, 1, calls)
        seconds /= updates_per_call
    return {"seconds": seconds, "busy": busy, "peak_flops": peak,
            "parameters": int(sum(v.numpy().size for v in model.trainable_variables))}


# ----- transformers + PyTorch -----------------------------------------------------------------------------

def run_hf(compiled, bf16, args):
    # With TensorFlow installed, `transformers` imports it too unless told not to: ~0.5 GB of RSS the PyTorch
    # step never uses. Read once, when transformers is first imported.
    os.environ["USE_TF"] = "0"
    import torch
    import transformers

    torch.manual_seed(0)
    peak = torch_matmul_peak(torch.bfloat16 if bf16 else torch.float32)

    def config(tower):
        return transformers.ElectraConfig(
            vocab_size=VOCAB, embedding_size=tower["embedding"], hidden_size=tower["hidden"],
            num_hidden_layers=tower["layers"], num_attention_heads=tower["heads"],
            intermediate_size=tower["intermediate"], hidden_act="gelu", hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1, max_position_embeddings=512)

    discriminator = transformers.ElectraForPreTraining(config(DISCRIMINATOR))
    generator = transformers.ElectraForMaskedLM(config(GENERATOR))
    generator.electra.embeddings = discriminator.electra.embeddings  # shared embeddings (ELECTRA's default)
    generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
    modules = torch.nn.ModuleList([discriminator, generator])
    decay = [p for n, p in modules.named_parameters() if not ("bias" in n or "LayerNorm" in n)]
    no_decay = [p for n, p in modules.named_parameters() if "bias" in n or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=5e-4, eps=1e-6)
    batch = {k: torch.from_numpy(v).long() if v.dtype.kind == "i" else torch.from_numpy(v)
             for k, v in random_batch().items()}
    modules.train()

    def loss_fn(batch):
        ids, mask, positions = batch["input_ids"], batch["input_mask"], batch["masked_lm_positions"]
        hidden = generator.electra(input_ids=ids, attention_mask=mask, token_type_ids=batch["segment_ids"])[0]
        picked = torch.gather(hidden, 1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        logits = generator.generator_lm_head(generator.generator_predictions(picked)).float()
        mlm = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), batch["masked_lm_ids"].reshape(-1))
        gumbel = -torch.log(-torch.log(torch.rand_like(logits).clamp_min(1e-9)).clamp_min(1e-9))
        sampled = torch.argmax(logits.detach() + gumbel, -1)
        corrupted = ids.scatter(1, positions, sampled)
        replaced = (corrupted != ids.scatter(1, positions, batch["masked_lm_ids"])).float()
        rtd_logits = discriminator(input_ids=corrupted, attention_mask=mask,
                                   token_type_ids=batch["segment_ids"]).logits.float()
        rtd = torch.nn.functional.binary_cross_entropy_with_logits(rtd_logits, replaced, weight=mask.float())
        return mlm + 50.0 * rtd

    forward = torch.compile(loss_fn) if compiled else loss_fn

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = forward(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        optimizer.step()

    seconds, busy = timed(step, args.warmup + (3 if compiled else 0), args.steps)
    return {"seconds": seconds, "busy": busy, "peak_flops": peak,
            "parameters": sum(p.numel() for p in modules.parameters())}


def torch_matmul_peak(dtype, size=2048, repeats=10):
    import torch

    a = torch.randn(size, size).to(dtype)
    best = float("inf")
    for _ in range(4):
        start = time.perf_counter()
        out = a
        for _ in range(repeats):
            out = out @ a
        float(out[0, 0])
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 * repeats / best


# ----- keras-hub ------------------------------------------------------------------------------------------

def run_keras_hub(args):
    try:
        import keras_hub  # noqa: F401
    except ImportError:
        return {"skipped": "keras-hub is not installed (pip install keras-hub)"}
    import keras
    import tensorflow as tf

    from scripts.benchmark_train import matmul_peak  # noqa: E402  (REPO is on sys.path)

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    peak = matmul_peak(tf.bfloat16)

    def backbone(tower):
        return keras_hub.models.ElectraBackbone(
            vocab_size=VOCAB, num_layers=tower["layers"], num_heads=tower["heads"], hidden_dim=tower["hidden"],
            embedding_dim=tower["embedding"], intermediate_dim=tower["intermediate"], dropout=0.1, max_sequence_length=512)

    discriminator, generator = backbone(DISCRIMINATOR), backbone(GENERATOR)
    embeddings = discriminator.token_embedding
    project = keras.layers.Dense(GENERATOR["embedding"], activation="gelu")
    norm = keras.layers.LayerNormalization(epsilon=1e-12)
    rtd_dense = keras.layers.Dense(DISCRIMINATOR["hidden"], activation="gelu")
    rtd_out = keras.layers.Dense(1)
    optimizer = keras.optimizers.AdamW(5e-4, weight_decay=0.01, epsilon=1e-6, global_clipnorm=1.0)
    batch = {k: tf.constant(v) for k, v in random_batch().items()}

    @tf.function
    def step_fn():
        ids, mask, positions = batch["input_ids"], batch["input_mask"], batch["masked_lm_positions"]
        inputs = {"token_ids": ids, "padding_mask": mask, "segment_ids": batch["segment_ids"]}
        with tf.GradientTape() as tape:
            hidden = generator(inputs, training=True)["sequence_output"]
            picked = norm(project(tf.gather(hidden, positions, batch_dims=1)))
            logits = tf.cast(tf.matmul(picked, tf.cast(embeddings.embeddings, picked.dtype), transpose_b=True), tf.float32)
            mlm = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(batch["masked_lm_ids"], logits))
            sampled = tf.cast(tf.random.categorical(tf.reshape(tf.stop_gradient(logits), [-1, VOCAB]), 1), tf.int32)
            sampled = tf.reshape(sampled, tf.shape(positions))
            rows = tf.repeat(tf.range(BATCH)[:, None], PREDICTIONS, axis=1)
            index = tf.stack([rows, positions], -1)
            corrupted = tf.tensor_scatter_nd_update(ids, index, sampled)
            original = tf.tensor_scatter_nd_update(ids, index, batch["masked_lm_ids"])
            replaced = tf.cast(tf.not_equal(corrupted, original), tf.float32)
            output = discriminator(dict(inputs, token_ids=corrupted), training=True)["sequence_output"]
            rtd_logits = tf.cast(tf.squeeze(rtd_out(rtd_dense(output)), -1), tf.float32)
            rtd = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(replaced, rtd_logits))
            loss = mlm + 50.0 * rtd
        variables = (discriminator.trainable_variables + generator.trainable_variables + project.trainable_variables
                     + norm.trainable_variables + rtd_dense.trainable_variables + rtd_out.trainable_variables)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    seconds, busy = timed(lambda: step_fn().numpy(), args.warmup, args.steps)
    return {"seconds": seconds, "busy": busy, "peak_flops": peak}


def run_one(name, args):
    if name.startswith("plm_tf"):
        result = run_plm_tf("bf16" in name, args, updates_per_call=10 if name.endswith("loop10") else 1)
    elif name.startswith("hf"):
        result = run_hf("compile" in name, name.endswith("bf16"), args)
    else:
        result = run_keras_hub(args)
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {CONFIGS}")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repetitions of every configuration")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--run", default=None, help=argparse.SUPPRESS)  # one configuration, in this process
    parser.add_argument("--json_out", default=None)
    args = parser.parse_args()
    if args.run:
        sys.path.insert(0, REPO)
        print("RESULT " + json.dumps(run_one(args.run, args)), flush=True)
        return
    names = args.configs.split(",")
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        raise SystemExit(f"unknown configurations {unknown}; choose from {CONFIGS}")
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    print(f"machine: {cpu}, {len(os.sched_getaffinity(0))} cores; batch {BATCH} × {SEQ_LEN}, median of "
          f"{args.steps} steps after {args.warmup} warm-up; model FLOPs per step {step_flops() / 1e9:.1f} G")
    runs = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            load = os.getloadavg()[0]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                       PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
            done = subprocess.run([sys.executable, os.path.abspath(__file__), f"--run={name}", f"--warmup={args.warmup}",
                                   f"--steps={args.steps}"], capture_output=True, text=True, env=env, cwd=REPO)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                print(f"  {name}: failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            result = dict(json.loads(lines[-1][len("RESULT "):]), load_before=load)
            if "skipped" in result:
                print(f"  {name}: skipped: {result['skipped']}", flush=True)
                continue
            runs[name].append(result)
            print(f"  repeat {repeat + 1} {name}: load {load:.2f}, step {result['seconds'] * 1e3:.0f} ms, "
                  f"{BATCH * SEQ_LEN / result['seconds']:,.0f} tokens/s, RSS {result['peak_rss_gb']:.2f} GB, "
                  f"cores busy {result['busy']:.0%}", flush=True)
    table = {}
    print("\n| implementation | tokens/s (median over repeats) | MFU | peak RSS GB | cores busy | load before |")
    print("|---|---|---|---|---|---|")
    for name, results in runs.items():
        if not results:
            continue
        seconds = statistics.median(r["seconds"] for r in results)
        row = {"tokens_per_s": BATCH * SEQ_LEN / seconds,
               "mfu": step_flops() / seconds / statistics.median(r["peak_flops"] for r in results),
               "rss_gb": max(r["peak_rss_gb"] for r in results),
               "busy": statistics.median(r["busy"] for r in results),
               "loads": [round(r["load_before"], 2) for r in results]}
        table[name] = row
        print(f"| {name} | {row['tokens_per_s']:,.0f} | {row['mfu']:.1%} | {row['rss_gb']:.2f} | {row['busy']:.0%} | "
              f"{row['loads']} |")
    print("\n| precision | plm_tf / best peer tokens/s | best peer | plm_tf RSS / best peer RSS |")
    print("|---|---|---|---|")
    for precision in ("fp32", "bf16"):
        ours = table.get(f"plm_tf_{precision}")
        peers = {n: r for n, r in table.items() if not n.startswith("plm_tf") and n.endswith(precision)}
        if ours and peers:
            best = max(peers, key=lambda n: peers[n]["tokens_per_s"])
            print(f"| {precision} | {ours['tokens_per_s'] / peers[best]['tokens_per_s']:.2f} | {best} | "
                  f"{ours['rss_gb'] / peers[best]['rss_gb']:.2f} |")
    if "plm_tf_bf16" in table and "plm_tf_bf16_loop10" in table:
        ratio = table["plm_tf_bf16_loop10"]["tokens_per_s"] / table["plm_tf_bf16"]["tokens_per_s"]
        print(f"\nplm_tf bf16, 10 updates per loop call (pretrain.steps_per_loop = 10) / 1 per call, per update: "
              f"{ratio:.2f}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"runs": runs, "table": table}, f, indent=2)


if __name__ == "__main__":
    main()
