"""Per-class scores and the confidence histogram, against values worked out by hand."""

from __future__ import annotations

import numpy as np

from cifar_gui.engine.models.metrics import class_scores, confidence_histogram


def test_scores_of_a_two_class_confusion_matrix():
    # 8 deer: 6 right, 2 called horse; 4 horses: 1 called deer, 3 right.
    scores = class_scores(np.array([[6, 2], [1, 3]]))
    np.testing.assert_allclose(scores.precision, [6 / 7, 3 / 5])
    np.testing.assert_allclose(scores.recall, [6 / 8, 3 / 4])
    f1_deer = 2 * (6 / 7) * (6 / 8) / (6 / 7 + 6 / 8)
    np.testing.assert_allclose(scores.f1, [f1_deer, 2 * 0.6 * 0.75 / 1.35])
    assert scores.support.tolist() == [8, 4]


def test_undefined_scores_are_nan_and_a_class_never_found_scores_zero():
    # Class 2 has no images and is never predicted; class 1 is never predicted right.
    scores = class_scores(np.array([[5, 0, 0], [4, 0, 0], [0, 0, 0]]))
    assert np.isnan(scores.precision[1]) and np.isnan(scores.precision[2])
    assert scores.recall[1] == 0.0 and np.isnan(scores.recall[2])
    assert np.isnan(scores.f1[1])  # precision undefined: F1 too
    assert scores.f1[0] == 2 * (5 / 9) * 1.0 / (5 / 9 + 1.0)


def test_histogram_bins_start_at_chance_and_split_right_from_wrong():
    probabilities = np.array([[0.95, 0.05], [0.55, 0.45], [0.2, 0.8], [0.5, 0.5], [0.1, 0.9]])
    labels = np.array([0, 1, 1, 0, 0])
    histogram = confidence_histogram(probabilities, labels, bins=5)
    np.testing.assert_allclose(histogram.edges, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    # Confidences: 0.95 right, 0.55 wrong, 0.8 right, 0.5 right (a tie picks class 0), 0.9 wrong.
    assert histogram.right.tolist() == [1, 0, 0, 1, 1]
    assert histogram.wrong.tolist() == [1, 0, 0, 0, 1]
