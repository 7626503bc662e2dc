"""Metrics against values computed by hand (confusion matrices and rank tables written out below)."""
import math

import numpy as np
import tensorflow as tf

from plm_tf.finetuning import metrics


class ClassificationMetricsTest(tf.test.TestCase):
    # labels      1 1 1 1 0 0 0 0 0 0
    # predictions 1 1 1 0 1 0 0 0 0 0     TP 3, FN 1, FP 1, TN 5
    LABELS = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    PREDICTIONS = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]

    def test_binary(self):
        self.assertAlmostEqual(metrics.accuracy(self.LABELS, self.PREDICTIONS), 0.8)
        # F1 = 2·3 / (2·3 + 1 + 1) = 0.75
        self.assertAlmostEqual(metrics.f1_score(self.LABELS, self.PREDICTIONS, 2, positive_class=1), 0.75)
        # negative class: TP 5, FP 1, FN 1 → 10 / 12
        self.assertAlmostEqual(metrics.f1_score(self.LABELS, self.PREDICTIONS, 2, positive_class=0), 10 / 12)
        # MCC = (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (15 − 1) / sqrt(4·4·6·6) = 14 / 24
        self.assertAlmostEqual(metrics.matthews_corrcoef(self.LABELS, self.PREDICTIONS, 2), 14 / 24)

    def test_multiclass(self):
        labels = [0, 0, 1, 1, 2, 2]
        predictions = [0, 1, 1, 1, 2, 0]
        # confusion rows (true) × columns (predicted): [[1,1,0],[0,2,0],[1,0,1]]
        np.testing.assert_array_equal(metrics.confusion_matrix(labels, predictions, 3),
                                      [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
        # per-class F1: 2·1/(2+2) = 0.5, 2·2/(3+2) = 0.8, 2·1/(1+2) = 2/3 → macro 0.6556
        self.assertAlmostEqual(metrics.f1_score(labels, predictions, 3), (0.5 + 0.8 + 2 / 3) / 3)
        # multiclass MCC: c = 4, s = 6, p = (2, 3, 1), t = (2, 2, 2):
        # (4·6 − (4 + 6 + 2)) / sqrt((36 − 14)(36 − 12)) = 12 / sqrt(528)
        self.assertAlmostEqual(metrics.matthews_corrcoef(labels, predictions, 3), 12 / math.sqrt(528))

    def test_degenerate_cases(self):
        # A constant prediction: MCC 0 (denominator 0), F1 of a class never predicted nor present is 0.
        self.assertEqual(metrics.matthews_corrcoef([0, 1, 0], [0, 0, 0], 2), 0.0)
        self.assertEqual(metrics.f1_score([0, 0], [0, 0], 3), (1.0 + 0.0 + 0.0) / 3)
        self.assertAlmostEqual(metrics.matthews_corrcoef([0, 1, 2], [0, 1, 2], 3), 1.0)
        self.assertAlmostEqual(metrics.matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0], 2), -1.0)


class RegressionMetricsTest(tf.test.TestCase):

    def test_pearson(self):
        # x = 1,2,3,4; y = 2,4,5,9: deviations (−1.5,−.5,.5,1.5), (−3,−1,0,4)
        # Σdxdy = 4.5 + .5 + 0 + 6 = 11; Σdx² = 5; Σdy² = 26 → r = 11 / sqrt(130)
        self.assertAlmostEqual(metrics.pearson_corrcoef([1, 2, 3, 4], [2, 4, 5, 9]), 11 / math.sqrt(130))
        self.assertEqual(metrics.pearson_corrcoef([1, 1, 1], [1, 2, 3]), 0.0)

    def test_spearman_with_ties(self):
        np.testing.assert_allclose(metrics.average_ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
        # ranks x = (1, 2, 3, 4), y = (1, 3.5, 3.5, 2) for y = 1, 7, 7, 3
        # deviations (−1.5,−.5,.5,1.5), (−1.5, 1, 1, −.5): Σ = 2.25 − .5 + .5 − .75 = 1.5;
        # Σdx² = 5, Σdy² = 2.25 + 1 + 1 + .25 = 4.5 → ρ = 1.5 / sqrt(22.5)
        self.assertAlmostEqual(metrics.spearman_corrcoef([1, 2, 3, 4], [1, 7, 7, 3]), 1.5 / math.sqrt(22.5))
        # monotone but not linear: Spearman 1, Pearson < 1
        self.assertAlmostEqual(metrics.spearman_corrcoef([1, 2, 3], [1, 10, 100]), 1.0)
        self.assertLess(metrics.pearson_corrcoef([1, 2, 3], [1, 10, 100]), 0.99)

    def test_regression_metrics_dict(self):
        result = metrics.regression_metrics([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
        self.assertAlmostEqual(result["mse"], (0.25 + 0 + 0.25) / 3)
        self.assertAlmostEqual(result["pearson"], 1.0)
        self.assertAlmostEqual(result["pearson_spearman_mean"], 1.0)


if __name__ == "__main__":
    tf.test.main()
