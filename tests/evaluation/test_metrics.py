"""plm_tf.evaluation.metrics against brute-force NumPy references on tiny cases."""
import itertools

import numpy as np
import tensorflow as tf

from plm_tf.evaluation import metrics


def brute_force_auc(scores, labels):
    """P(score of a positive > score of a negative) + ½ P(equal), over every (positive, negative) pair."""
    positives = [s for s, y in zip(scores, labels) if y]
    negatives = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(positives, negatives))
    return wins / (len(positives) * len(negatives))


class MetricsTest(tf.test.TestCase):
    def test_auc_matches_pairwise_count_with_ties(self):
        rng = np.random.default_rng(0)
        scores = rng.integers(0, 6, size=60).astype(float)  # many ties
        labels = rng.integers(0, 2, size=60)
        self.assertAlmostEqual(metrics.roc_auc(scores, labels), brute_force_auc(scores, labels), places=12)
        self.assertEqual(metrics.roc_auc([0.1, 0.9, 0.8], [0, 1, 1]), 1.0)
        self.assertEqual(metrics.roc_auc([0.9, 0.1], [0, 1]), 0.0)
        self.assertEqual(metrics.roc_auc([0.3, 0.3, 0.3], [0, 1, 0]), 0.5)
        self.assertTrue(np.isnan(metrics.roc_auc([0.3, 0.4], [1, 1])))

    def test_mean_pairwise_cosine_matches_explicit_pairs(self):
        vectors = np.random.default_rng(1).normal(size=(9, 5)) + 0.5
        units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        pairs = [units[i] @ units[j] for i in range(9) for j in range(9) if i != j]
        self.assertAlmostEqual(metrics.mean_pairwise_cosine(vectors), np.mean(pairs), places=12)
        self.assertAlmostEqual(metrics.mean_pairwise_cosine(np.tile([[1.0, 2.0]], (4, 1)) * [[1], [2], [3], [4]]),
                               1.0, places=12)  # all on one ray
        self.assertAlmostEqual(metrics.mean_pairwise_cosine([[1.0, 0.0], [-1.0, 0.0]]), -1.0, places=12)

    def test_effective_rank_definition(self):
        vectors = np.random.default_rng(2).normal(size=(20, 6))
        singular = np.linalg.svd(vectors, compute_uv=False)
        p = singular / singular.sum()
        self.assertAlmostEqual(metrics.effective_rank(vectors), float(np.exp(-(p * np.log(p)).sum())), places=10)
        # Rank one → 1; k orthogonal directions of equal energy → k.
        self.assertAlmostEqual(metrics.effective_rank(np.outer(np.arange(1, 6), [1.0, 2.0, 3.0])), 1.0, places=6)
        self.assertAlmostEqual(metrics.effective_rank(np.eye(4)[:, :] * 3.0), 4.0, places=10)
        self.assertAlmostEqual(metrics.effective_rank(np.diag([1.0, 1.0, 0.0])), 2.0, places=10)
