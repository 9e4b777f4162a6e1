"""The torch linear SVM solves LinearSVC's problem: same objective value, same predictions."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.svm import LinearSVC

from poolrep.linear_svm import LinearSVM


def _sk_objective(clf, x, y, C):
    """LinearSVC's one-vs-rest objective per class, intercept regularised (liblinear's appended feature)."""
    W = np.vstack([clf.coef_.T, clf.intercept_[None, :]])
    X = np.hstack([x, np.ones((len(x), 1))])
    classes = clf.classes_ if len(clf.classes_) > 2 else clf.classes_[1:]
    Y = np.where(y[:, None] == classes[None, :], 1.0, -1.0)
    m = np.maximum(0, 1 - Y * (X @ W))
    return 0.5 * (W**2).sum(0) + C * (m**2).sum(0)


@pytest.mark.parametrize("classes,C", [(4, 0.05), (2, 1.0)])
def test_matches_liblinear(classes, C):
    x, y = make_classification(600, 30, n_informative=10, n_classes=classes, n_clusters_per_class=1, random_state=0)
    sk = LinearSVC(C=C, tol=1e-10, max_iter=200000, dual=True, random_state=0).fit(x, y)
    ours = LinearSVM(C=C, tol=1e-10, dtype=torch.float64).fit(x, y)
    f_sk, f_ours = _sk_objective(sk, x, y, C), ours.objective(x, y)
    assert f_ours.shape == f_sk.shape == ((classes,) if classes > 2 else (1,))
    # ours is at least as low as liblinear's and within 1e-4 of it: the same minimum
    assert np.all(f_ours <= f_sk * (1 + 1e-6))
    np.testing.assert_allclose(f_ours, f_sk, rtol=1e-4)
    xt, _ = make_classification(400, 30, n_informative=10, n_classes=classes, n_clusters_per_class=1, random_state=1)
    assert (ours.predict(xt) == sk.predict(xt)).mean() >= 0.99
    np.testing.assert_allclose(ours.decision_function(xt), sk.decision_function(xt), atol=2e-3)


def test_default_float32_and_loose_tolerance_predict_as_the_tight_fit():
    x, y = make_classification(3000, 60, n_informative=20, n_classes=5, n_clusters_per_class=2, random_state=2)
    tight = LinearSVM(C=0.01, tol=1e-10, dtype=torch.float64).fit(x, y)
    fast = LinearSVM(C=0.01).fit(x, y)
    assert fast.W.dtype == torch.float32 and fast.n_iter_ < tight.n_iter_
    xt, _ = make_classification(2000, 60, n_informative=20, n_classes=5, n_clusters_per_class=2, random_state=3)
    assert (fast.predict(xt) == tight.predict(xt)).mean() >= 0.995
    np.testing.assert_allclose(fast.objective(x, y), tight.objective(x, y), rtol=1e-3)


def test_bad_input():
    with pytest.raises(ValueError, match="C must be > 0"):
        LinearSVM(C=0)
    with pytest.raises(ValueError, match="at least two classes"):
        LinearSVM().fit(np.zeros((3, 2)), [1, 1, 1])
    with pytest.raises(ValueError, match="3 feature rows but 2 labels"):
        LinearSVM().fit(np.zeros((3, 2)), [0, 1])
    with pytest.raises(RuntimeError, match="before fit"):
        LinearSVM().predict(np.zeros((1, 2)))


def test_warm_start_reaches_the_same_minimum_in_fewer_iterations():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 20)).astype(np.float32)
    y = (x[:, :3] @ rng.normal(size=(3, 4))).argmax(1)
    cold_low = LinearSVM(C=0.01).fit(x, y)
    cold = LinearSVM(C=0.1).fit(x, y)
    warm = LinearSVM(C=0.1).fit(x, y, W0=cold_low.W)
    assert warm.n_iter_ < cold.n_iter_
    np.testing.assert_allclose(warm.objective(x, y), cold.objective(x, y), rtol=1e-3)
    assert (warm.predict(x) == cold.predict(x)).mean() > 0.99
    with pytest.raises(ValueError, match="W0 must be"):
        LinearSVM(C=0.1).fit(x, y, W0=cold_low.W[:-1])


def test_longer_history_reaches_the_same_minimum():
    # the stage keeps 100 gradient pairs (issue 43); the minimum does not depend on it, only the work to reach it
    x, y = make_classification(2000, 80, n_informative=30, n_classes=5, n_clusters_per_class=2, random_state=4)
    short, long = LinearSVM(C=0.1, history=5).fit(x, y), LinearSVM(C=0.1).fit(x, y)
    assert long.history == 100 and short.history == 5
    np.testing.assert_allclose(long.objective(x, y), short.objective(x, y), rtol=1e-3)
    assert long.n_iter_ < short.n_iter_
    assert (long.predict(x) == short.predict(x)).mean() > 0.99
    with pytest.raises(ValueError, match="history"):
        LinearSVM(history=0)
