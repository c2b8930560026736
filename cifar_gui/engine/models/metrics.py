"""Per-class scores and confidence histograms of an evaluation (NumPy only, no Keras).

The Evaluation tab and the study's report show these beside the confusion matrix, as
Orange's Test and Score does: precision, recall and F1 of each class, and how confident the
model is when it is right and when it is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall and F1 per class (NaN where undefined: no image predicted as, or
    labelled as, the class), and the number of test images of each class (support)."""

    precision: np.ndarray  # (k,) of the images predicted as the class, the share truly of it
    recall: np.ndarray  # (k,) of the images of the class, the share predicted as it
    f1: np.ndarray  # (k,) harmonic mean of the two
    support: np.ndarray  # (k,) images of the class


def class_scores(confusion: np.ndarray) -> ClassScores:
    """Scores from a confusion matrix whose rows are true classes, columns predicted ones."""
    confusion = np.asarray(confusion, dtype=np.float64)
    right = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, right / predicted, np.nan)
        recall = np.where(support > 0, right / support, np.nan)
        f1 = 2 * precision * recall / (precision + recall)  # NaN where either is
    f1[precision + recall == 0] = 0.0  # a class never predicted right scores 0, not 0/0
    return ClassScores(precision, recall, f1, support.astype(np.int64))


@dataclass(frozen=True)
class ConfidenceHistogram:
    """How many answers fall in each confidence bin, apart for right and wrong ones."""

    edges: np.ndarray  # (bins + 1,) from the lowest possible confidence to 1
    right: np.ndarray  # (bins,) right answers per bin
    wrong: np.ndarray  # (bins,) wrong answers per bin


def confidence_histogram(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = 10
) -> ConfidenceHistogram:
    """Histogram of the predicted class's probability; with k classes it is at least 1/k."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    k = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    edges = np.linspace(1.0 / k, 1.0, bins + 1)
    correct = predicted == np.asarray(labels)
    right, _ = np.histogram(confidence[correct], bins=edges)
    wrong, _ = np.histogram(confidence[~correct], bins=edges)
    return ConfidenceHistogram(edges, right, wrong)
