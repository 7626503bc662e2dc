"""Held-out evaluation of one checkpoint, as a dict: what `python -m plm_tf.evaluate` prints as JSON.

The evaluation is the trainer's (`plm_tf.evaluation.evaluator`: fixed seeded masks and samples, dropout off) on
a model loaded by `plm_tf.evaluation.loading`, so its numbers equal a run's `eval/` summaries for the same
weights and settings.
"""
import math

DEFAULT_EVAL_BATCHES = 8


def _json_value(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _run_evaluation_data():
    """(corpus, documents) a trainer run evaluated on, from its parsed operative config: its
    `pretrain.eval_corpus_paths` (every document), else the held-out documents of its `pretrain.corpus_paths`
    (None: the embedded default corpus)."""
    from plm_tf.gin_config import query_or_none

    eval_corpus = query_or_none("pretrain.eval_corpus_paths")
    if eval_corpus is not None:
        return list(eval_corpus), "all"
    corpus = query_or_none("pretrain.corpus_paths")
    return (None if corpus is None else list(corpus)), "heldout"


def evaluate_checkpoint(checkpoint, corpus=None, documents=None, seq_len=None, batch_size=None, eval_batches=None,
                        gin_params=()):
    """The result of evaluating `checkpoint` (the fields `python -m plm_tf.evaluate` documents); ValueError
    subclasses for bad input. Without `corpus`, a trainer run is evaluated on the data it evaluated on itself
    (so the numbers equal its `eval/` summaries) and a converted checkpoint on the embedded corpus's held-out
    documents."""
    from plm_tf.evaluation.evaluator import PretrainingEvaluator, evaluation_batches
    from plm_tf.evaluation.loading import LoadError, load_pretraining_model
    from plm_tf.gin_config import query_or_none

    model, info = load_pretraining_model(checkpoint, gin_params)
    seq_len = seq_len or info["seq_len"]
    batch_size = batch_size or info["batch_size"]
    eval_batches = eval_batches or query_or_none("pretrain.eval_batches") or DEFAULT_EVAL_BATCHES
    if seq_len is None or batch_size is None:
        raise LoadError(f"{info['checkpoint']} records no seq_len/batch_size (a converted model): pass "
                        "--seq_len and --batch_size.")
    for name, value in (("seq_len", seq_len), ("batch_size", batch_size), ("eval_batches", eval_batches)):
        if value < 1:
            raise LoadError(f"--{name} must be positive, got {value}.")
    if corpus is None and info["layout"] == "trainer":
        corpus, run_documents = _run_evaluation_data()
        documents = documents or run_documents
    documents = documents or ("all" if corpus else "heldout")
    batches = evaluation_batches(info["objective"], corpus, documents, info["tokenizer"].kind, info["vocab_path"],
                                 seq_len, batch_size, eval_batches)
    metrics = PretrainingEvaluator(model, info["objective"], batches).evaluate()
    return {
        "checkpoint": info["checkpoint"], "layout": info["layout"], "objective": info["objective"],
        "step": info["step"], "corpus": corpus or "embedded", "documents": documents, "seq_len": seq_len,
        "batch_size": batch_size, "eval_batches": eval_batches,
        "metrics": {name: _json_value(value) for name, value in metrics.items()},
    }
