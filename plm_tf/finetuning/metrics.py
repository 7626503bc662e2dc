"""GLUE metrics in plain numpy: accuracy, F1, Matthews correlation, Pearson and Spearman correlation.

Definitions follow scikit-learn / scipy (what the GLUE leaderboard scripts call):
- F1 for a binary task is the positive class's F1; for more classes, the macro average of per-class F1.
  A class with no predictions and no examples contributes F1 0 (sklearn's `zero_division=0`).
- Matthews correlation is the multi-class form (Gorodkin 2004, sklearn `matthews_corrcoef`); 0 when the
  denominator is 0 (e.g. a constant prediction).
- Spearman is Pearson on ranks, ties getting their average rank (scipy `spearmanr`).

`task_metrics` picks the set reported for a task (GLUE: accuracy + F1 for MRPC/QQP-style binary tasks,
Matthews for CoLA, Pearson/Spearman for STS-B); `primary_metric` names the one used to keep the best
checkpoint.
"""
import numpy as np


def accuracy(labels, predictions):
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return float(np.mean(labels == predictions))


def confusion_matrix(labels, predictions, num_classes):
    """[num_classes, num_classes] counts, rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


def _f1_per_class(matrix):
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    actual = matrix.sum(axis=1).astype(np.float64)
    denominator = predicted + actual  # F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (predicted + actual)
    return np.where(denominator > 0, 2.0 * true_positive / np.maximum(denominator, 1.0), 0.0)


def f1_score(labels, predictions, num_classes, positive_class=None):
    """Binary F1 of `positive_class` when it is given, else macro F1 over `num_classes`."""
    per_class = _f1_per_class(confusion_matrix(labels, predictions, num_classes))
    if positive_class is not None:
        return float(per_class[positive_class])
    return float(np.mean(per_class))


def matthews_corrcoef(labels, predictions, num_classes):
    """(c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)).

    c = correct predictions, s = examples, p_k / t_k = how often class k is predicted / true.
    """
    matrix = confusion_matrix(labels, predictions, num_classes).astype(np.float64)
    correct = np.trace(matrix)
    total = matrix.sum()
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    numerator = correct * total - np.dot(predicted, actual)
    denominator = np.sqrt((total**2 - np.dot(predicted, predicted)) * (total**2 - np.dot(actual, actual)))
    return float(numerator / denominator) if denominator > 0 else 0.0


def pearson_corrcoef(x, y):
    """Pearson's r; 0 when either input is constant."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denominator) if denominator > 0 else 0.0


def average_ranks(values):
    """1-based ranks, tied values sharing the mean of their ranks (scipy.stats.rankdata 'average')."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), np.float64)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman_corrcoef(x, y):
    return pearson_corrcoef(average_ranks(x), average_ranks(y))


def classification_metrics(labels, predictions, num_classes, positive_class=None):
    """accuracy, f1 (binary of `positive_class`, else macro) and matthews_corrcoef."""
    return {
        "accuracy": accuracy(labels, predictions),
        "f1": f1_score(labels, predictions, num_classes, positive_class),
        "matthews_corrcoef": matthews_corrcoef(labels, predictions, num_classes),
    }


def regression_metrics(labels, predictions):
    """pearson, spearman and their mean (GLUE's STS-B score), plus the mean squared error."""
    pearson = pearson_corrcoef(labels, predictions)
    spearman = spearman_corrcoef(labels, predictions)
    errors = np.asarray(predictions, np.float64) - np.asarray(labels, np.float64)
    return {"pearson": pearson, "spearman": spearman, "pearson_spearman_mean": (pearson + spearman) / 2.0,
            "mse": float(np.mean(errors**2))}


def task_metrics(task, labels, outputs):
    """Metrics of `task` (a `tasks.Task`) for model outputs: logits [N, C], or scores [N] for regression."""
    outputs = np.asarray(outputs)
    if task.is_regression:
        return regression_metrics(labels, outputs.reshape(-1))
    predictions = np.argmax(outputs, axis=-1)
    positive = task.label_names.index(task.positive_label) if task.positive_label is not None else None
    return classification_metrics(labels, predictions, task.num_classes, positive)


def primary_metric(task):
    """The metric that picks the best checkpoint: accuracy for classification, Pearson/Spearman mean for
    regression (a task-specific choice, e.g. Matthews for CoLA, is `finetune.selection_metric`)."""
    return "pearson_spearman_mean" if task.is_regression else "accuracy"
