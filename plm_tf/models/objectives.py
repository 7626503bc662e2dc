"""Pretraining losses and metrics, as (sum, count) terms that the train loop normalises globally.

Each loss is a token- or example-level mean in the original code; here every mean is returned as its
numerator and denominator so that, under data parallelism or gradient accumulation, the train loop can divide
each replica's numerator by the *global* denominator — giving exactly the single-device loss.

- Masked LM (google-research/bert `get_masked_lm_output`, electra `_get_masked_lm_output`):
  Σ w·CE(logits, label) / Σ w over the prediction slots.
- NSP / SOP (bert `get_next_sentence_output`): mean CE over examples.
- Replaced-token detection (electra `_get_discriminator_output`): Σ mask·BCE / Σ mask over every real token
  (special tokens included).
- ELECTRA total = 1 × generator + 50 × discriminator (electra `disc_weight` = 50, `gen_weight` = 1).
"""
import tensorflow as tf

# google-research/electra configure_pretraining.py: gen_weight = 1.0, disc_weight = 50.0.
LOSS_WEIGHTS = {"mlm": 1.0, "sentence": 1.0, "discriminator": 50.0}
# Bins of the discriminator-probability histograms from which AUC is computed (like keras AUC's thresholds).
AUC_BINS = 200


def masked_lm_terms(logits, labels, weights):
    """logits [B, P, V], labels int [B, P], weights float [B, P] → (Σ w·CE, Σ w, Σ w·correct)."""
    logits = tf.cast(logits, tf.float32)
    per_slot = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
    return tf.reduce_sum(per_slot * weights), tf.reduce_sum(weights), tf.reduce_sum(correct * weights)


def sentence_terms(logits, labels):
    """logits [B, 2], labels int [B] → (Σ CE, B, Σ correct)."""
    logits = tf.cast(logits, tf.float32)
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
    count = tf.cast(tf.shape(labels)[0], tf.float32)
    return tf.reduce_sum(per_example), count, tf.reduce_sum(correct)


def discriminator_terms(logits, labels, input_mask):
    """logits [B, T], labels int [B, T], input_mask [B, T] → (Σ mask·BCE, Σ mask, confusion and AUC stats)."""
    logits = tf.cast(logits, tf.float32)
    mask = tf.cast(input_mask, tf.float32)
    labels_f = tf.cast(labels, tf.float32)
    per_token = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels_f, logits=logits)
    predicted = tf.cast(logits > 0.0, tf.float32)
    bins = tf.clip_by_value(tf.cast(tf.sigmoid(logits) * AUC_BINS, tf.int32), 0, AUC_BINS - 1)
    positives = tf.math.bincount(bins, weights=labels_f * mask, minlength=AUC_BINS, maxlength=AUC_BINS)
    negatives = tf.math.bincount(bins, weights=(1.0 - labels_f) * mask, minlength=AUC_BINS, maxlength=AUC_BINS)
    stats = {
        "true_positives": tf.reduce_sum(predicted * labels_f * mask),
        "false_positives": tf.reduce_sum(predicted * (1.0 - labels_f) * mask),
        "false_negatives": tf.reduce_sum((1.0 - predicted) * labels_f * mask),
        "true_negatives": tf.reduce_sum((1.0 - predicted) * (1.0 - labels_f) * mask),
        "auc_positive_histogram": positives,
        "auc_negative_histogram": negatives,
    }
    return tf.reduce_sum(per_token * mask), tf.reduce_sum(mask), stats


def loss_terms(objective, features, outputs):
    """All (numerator, denominator) loss terms and metric sums of one (per-replica) batch.

    Returns:
        (terms, sums): terms maps a loss name in LOSS_WEIGHTS to (numerator, denominator) scalars; sums maps
        metric statistic names to sums (scalars or AUC histograms) that add across replicas and steps.
    """
    weights = tf.cast(features["masked_lm_weights"], tf.float32)
    mlm_sum, mlm_count, mlm_correct = masked_lm_terms(outputs["mlm_logits"], features["masked_lm_ids"], weights)
    terms = {"mlm": (mlm_sum, mlm_count)}
    sums = {"mlm_correct": mlm_correct, "mlm_count": mlm_count}
    if "sentence_logits" in outputs:
        label_key = "sentence_order_label" if objective == "mlm_sop" else "next_sentence_label"
        sentence_sum, count, correct = sentence_terms(outputs["sentence_logits"], features[label_key])
        terms["sentence"] = (sentence_sum, count)
        sums.update(sentence_correct=correct, sentence_count=count)
    if objective == "electra":
        sampled_original = tf.cast(tf.equal(outputs["sampled_ids"], features["masked_lm_ids"]), tf.float32)
        sums["sampled_equals_original"] = tf.reduce_sum(sampled_original * weights)
        disc_sum, disc_count, stats = discriminator_terms(
            outputs["discriminator_logits"], outputs["discriminator_labels"], features["input_mask"]
        )
        terms["discriminator"] = (disc_sum, disc_count)
        sums.update(stats, discriminator_count=disc_count)
    return terms, sums


def total_loss(terms, global_denominators):
    """Σ weight · numerator / global denominator; also returns each normalised loss (scalars)."""
    losses = {
        name: numerator / tf.maximum(global_denominators[name], 1e-6) for name, (numerator, _) in terms.items()
    }
    return tf.add_n([LOSS_WEIGHTS[name] * loss for name, loss in losses.items()]), losses


def _safe_ratio(numerator, denominator):
    return float(numerator) / float(denominator) if float(denominator) > 0 else float("nan")


def auc_from_histograms(positive, negative):
    """Area under the ROC curve from per-bin positive/negative counts (ties within a bin count one half)."""
    import numpy as np

    positive, negative = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if positive.sum() == 0 or negative.sum() == 0:
        return float("nan")
    negatives_below = np.cumsum(negative) - negative
    pairs = (positive * (negatives_below + 0.5 * negative)).sum()
    return float(pairs / (positive.sum() * negative.sum()))


def metrics_from_sums(sums):
    """Readable metrics from accumulated sums: accuracies, discriminator precision/recall/AUC, sample rate."""
    metrics = {"mlm_accuracy": _safe_ratio(sums["mlm_correct"], sums["mlm_count"])}
    if "sentence_count" in sums:
        metrics["sentence_accuracy"] = _safe_ratio(sums["sentence_correct"], sums["sentence_count"])
    if "discriminator_count" in sums:
        tp, fp = sums["true_positives"], sums["false_positives"]
        fn, tn = sums["false_negatives"], sums["true_negatives"]
        metrics.update(
            discriminator_accuracy=_safe_ratio(tp + tn, sums["discriminator_count"]),
            discriminator_precision=_safe_ratio(tp, tp + fp),
            discriminator_recall=_safe_ratio(tp, tp + fn),
            discriminator_auc=auc_from_histograms(sums["auc_positive_histogram"], sums["auc_negative_histogram"]),
            sampled_equals_original=_safe_ratio(sums["sampled_equals_original"], sums["mlm_count"]),
        )
    return metrics
