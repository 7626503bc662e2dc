"""Evaluation of a pretraining model on fixed held-out batches, dropout off (google-research/electra
`run_pretraining.py` `do_eval`, google-research/bert `run_pretraining.py --do_eval`).

Everything random is fixed once: the batches (documents, masks) are drawn by the pretraining pipeline with
`EVAL_SEED`, unshuffled, and kept in memory; ELECTRA's generator samples of batch i use the stateless seed
(EVAL_SEED, i). So two evaluations of the same weights give bit-identical metrics, and runs with different
training seeds are measured on the same examples.

Metrics (`PretrainingEvaluator.evaluate`), every mean taken over the whole evaluation set:
    loss                     Σ weight · loss term (as in training: `objectives.LOSS_WEIGHTS`)
    mlm_loss, mlm_perplexity, mlm_accuracy      masked LM (ELECTRA: the generator's); perplexity = exp(loss)
    sentence_loss, sentence_accuracy            "mlm_nsp" / "mlm_sop": NSP / SOP
    discriminator_loss, _accuracy, _auc, _precision, _recall   ELECTRA replaced-token detection over real
                             tokens; AUC exact (rank statistic), precision/recall at logit 0
    replaced_fraction        share of real tokens whose discriminator label is "replaced"
    sampled_equals_original  share of masked slots where the generator sampled the original token
    mean_cosine, effective_rank   isotropy probe of the final-layer token vectors (the discriminator's for
                             ELECTRA, the encoder's otherwise), non-padding tokens, the first
                             `MAX_PROBE_TOKENS` in batch order (see `metrics`)
"""
import math

import numpy as np
import tensorflow as tf

from plm_tf.data import pipelines
from plm_tf.evaluation import metrics as metrics_lib
from plm_tf.models import objectives
from plm_tf.models.pretraining import ElectraPretrainer

# Seed of the evaluation masks and samples: the same for every run, so runs are compared on the same examples.
EVAL_SEED = 20200
# Token vectors kept for the isotropy probe (an SVD of at most this many rows).
MAX_PROBE_TOKENS = 8192


class EvaluationError(ValueError):
    """An evaluation set that cannot be built as asked (e.g. too few held-out examples)."""


def evaluation_batches(objective, corpus_paths, documents, tokenizer_kind, vocab_path, seq_len, batch_size,
                       num_batches):
    """`num_batches` fixed batches (list of {feature: np.ndarray [B, ...]}) from the pretraining pipeline.

    The pipeline's gin bindings (mask_prob, max_predictions_per_seq, mask unit ...) apply, as in training;
    examples come in corpus order (no shuffling) with masks seeded by `EVAL_SEED`; when one pass over the
    documents gives too few examples, later epochs (fresh masks of the same documents) follow.

    Raises:
        EvaluationError: the documents do not give `num_batches` batches in `num_batches` epochs.
    """
    dataset = pipelines.pretraining_dataset(
        objective=objective, corpus_paths=corpus_paths, tokenizer_kind=tokenizer_kind, vocab_path=vocab_path,
        seq_len=seq_len, batch_size=batch_size, seed=EVAL_SEED, shuffle_buffer=0, shuffle_files=False,
        documents=documents, num_epochs=num_batches,
    )
    batches = list(dataset.take(num_batches).as_numpy_iterator())
    if len(batches) < num_batches:
        which = "held-out documents" if documents == "heldout" else "evaluation corpus"
        raise EvaluationError(
            f"the {which} give only {len(batches)} batches of {batch_size} in {num_batches} epochs; "
            f"lower eval_batches or pass a larger eval corpus."
        )
    return batches


class PretrainingEvaluator:
    """Runs `model` (a `MaskedLMPretrainer` or `ElectraPretrainer`) on fixed batches and returns metrics.

    Args:
        model: the built pretraining model.
        objective: "mlm", "mlm_nsp", "mlm_sop" or "electra".
        batches: list of feature dicts {name: array [B, ...]} (`evaluation_batches`).

    Example:
        >>> evaluator = PretrainingEvaluator(model, "electra", evaluation_batches(...))
        >>> evaluator.evaluate()["discriminator_auc"]
    """

    def __init__(self, model, objective, batches):
        if not batches:
            raise EvaluationError("no evaluation batches")
        self.model = model
        self.objective = objective
        self.batches = [{name: tf.constant(value) for name, value in batch.items()} for batch in batches]
        self._forward = tf.function(self._forward_fn)

    def _forward_fn(self, batch, sampling_seed):
        if isinstance(self.model, ElectraPretrainer):
            outputs = self.model(batch, training=False, sampling_seed=sampling_seed)
        else:
            outputs = self.model(batch, training=False)
        terms, sums = objectives.loss_terms(self.objective, batch, outputs)
        extra = {"sequence_output": tf.cast(outputs["sequence_output"], tf.float32)}
        if "discriminator_logits" in outputs:
            extra["discriminator_logits"] = tf.cast(outputs["discriminator_logits"], tf.float32)
            extra["discriminator_labels"] = outputs["discriminator_labels"]
        return terms, sums, extra

    def evaluate(self):
        """One pass over the batches → {metric name: float} (module docstring)."""
        numerators, denominators, sums = {}, {}, {}
        scores, labels, probe = [], [], []
        probe_tokens = 0
        for index, batch in enumerate(self.batches):
            seed = tf.constant([EVAL_SEED, index], tf.int32)
            terms, batch_sums, extra = self._forward(batch, seed)
            for name, (numerator, denominator) in terms.items():
                numerators[name] = numerators.get(name, 0.0) + float(numerator)
                denominators[name] = denominators.get(name, 0.0) + float(denominator)
            for name, value in batch_sums.items():
                value = np.asarray(value, np.float64)
                sums[name] = sums[name] + value if name in sums else value
            real = batch["input_mask"].numpy().astype(bool)
            if "discriminator_logits" in extra:
                scores.append(extra["discriminator_logits"].numpy()[real])
                labels.append(extra["discriminator_labels"].numpy()[real])
            if probe_tokens < MAX_PROBE_TOKENS:
                vectors = extra["sequence_output"].numpy()[real][: MAX_PROBE_TOKENS - probe_tokens]
                probe.append(vectors)
                probe_tokens += len(vectors)
        losses = {name: numerators[name] / max(denominators[name], 1e-6) for name in numerators}
        result = {"loss": sum(objectives.LOSS_WEIGHTS[name] * value for name, value in losses.items())}
        result["mlm_loss"] = losses["mlm"]
        result["mlm_perplexity"] = math.exp(min(losses["mlm"], 700.0))
        if "sentence" in losses:
            result["sentence_loss"] = losses["sentence"]
        if "discriminator" in losses:
            result["discriminator_loss"] = losses["discriminator"]
        result.update(objectives.metrics_from_sums(sums))
        if scores:
            scores, labels = np.concatenate(scores), np.concatenate(labels)
            result["discriminator_auc"] = metrics_lib.roc_auc(scores, labels)
            result["replaced_fraction"] = float(labels.mean())
        vectors = np.concatenate(probe)
        result["mean_cosine"] = metrics_lib.mean_pairwise_cosine(vectors)
        result["effective_rank"] = metrics_lib.effective_rank(vectors)
        return {name: float(value) for name, value in result.items()}
