"""NumPy metrics of an evaluation pass: exact ROC AUC and the isotropy probe of token representations.

The isotropy probe watches for the representation collapse seen when an ELECTRA discriminator degenerates:
final-layer token vectors that all point the same way (mean pairwise cosine → 1) and span few directions
(effective rank → 1). Both are computed on the non-padding token vectors of the evaluation batches.
"""
import numpy as np


def roc_auc(scores, labels):
    """Exact area under the ROC curve (Mann–Whitney U / (n₊ n₋), tied scores count one half).

    Args:
        scores: float [N], higher = more likely positive.
        labels: {0, 1} [N].

    Returns:
        float in [0, 1]; NaN when one class is absent.
    """
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), np.float64)
    # Mid-ranks (1-based) for runs of equal scores.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    mid = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mid, ends - starts)
    u = ranks[labels].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def mean_pairwise_cosine(vectors):
    """Mean cosine similarity over all ordered pairs i ≠ j of the rows of `vectors` float [N, H] (N ≥ 2).

    Computed exactly in O(N·H): with unit rows uᵢ, Σ_{i≠j} uᵢ·uⱼ = |Σᵢ uᵢ|² − N.
    """
    vectors = np.asarray(vectors, np.float64)
    count = vectors.shape[0]
    if count < 2:
        return float("nan")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    units = vectors / np.maximum(norms, 1e-12)
    total = units.sum(axis=0)
    return float((total @ total - count) / (count * (count - 1)))


def effective_rank(vectors):
    """Effective rank of `vectors` float [N, H] (Roy & Vetterli 2007, "The effective rank: a measure of
    effective dimensionality"): exp of the Shannon entropy of the singular values normalised to sum 1,
    pₖ = σₖ / Σσ, erank = exp(−Σ pₖ log pₖ). Uncentred (the vectors a fine-tuning head reads), so a shared
    offset direction lowers it. Between 1 (rank one) and min(N, H) (all singular values equal)."""
    singular = np.linalg.svd(np.asarray(vectors, np.float64), compute_uv=False)
    if singular.sum() <= 0:
        return float("nan")
    p = singular / singular.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))
