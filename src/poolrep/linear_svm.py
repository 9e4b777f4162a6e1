"""A linear L2-SVM in PyTorch: scikit-learn's ``LinearSVC`` objective, solved on the CPU or a GPU.

Why not ``sklearn.svm.LinearSVC``: Table 1 of auto-pooling (paper 000) trains 10-class linear classifiers on
50,000 x 3,000 pooled features, more than a dozen times per run. liblinear is single-threaded and spends minutes
per fit at that size on this 2-core machine, and it cannot use a GPU; the same objective in torch is a few
matrix products per L-BFGS iteration. ``tests/test_linear_svm.py`` checks it against ``LinearSVC`` (objective
and predictions) on a subset, so both solve one problem.

The objective is ``LinearSVC(loss="squared_hinge", penalty="l2", multi_class="ovr", fit_intercept=True,
intercept_scaling=1)``'s, one-vs-rest, for each class c with labels ``y_i = +1`` (class c) or ``-1``:

    min_w  0.5 ||w||^2 + C sum_i max(0, 1 - y_i w . [x_i, 1])^2

(liblinear appends a constant feature 1 and regularises its weight too, so the intercept is penalised as well).
The classes' objectives are independent; their sum is minimised at once by full-batch L-BFGS with strong Wolfe
line search (``torch.optim.LBFGS``). The gradient is written out, ``W - 2C X^T (Y * m)`` with the margins' slack
``m``, and computed as ``(G^T X)^T``: autograd's ``X^T G`` is five times slower on a tall X here. ``tol`` bounds
the largest entry of the gradient of the objective divided by ``C N``; 1e-4 (the default) changed no prediction
against 1e-6 on auto-pooling's CIFAR-10 features and takes half the iterations. ``dtype`` float32 (the default)
halves the memory traffic; the comparison with liblinear runs in float64 at a tight tolerance. ``history``: the
gradient pairs L-BFGS keeps, 100 (torch's default): on 16-px SP 4x4 features (25,000 x 1,600) a C path from 1e-4
to 1 took 685 evaluations against 888 with 20 (issue 43), each iteration's extra work d x 10 x history, next to
nothing beside an evaluation's N x d x 10.

The kernel SVM of cross-layer pooling (paper 003) is here too: :func:`linear_kernel` (a precomputed linear kernel
over float16/32 storage, chunked: 100k+-dimensional representations stay N x N) and :func:`svm_correct` (libsvm's
dual solver through scikit-learn's ``SVC(kernel="precomputed")``, C by cross-validation on the training split).
"""

from __future__ import annotations

import numpy as np
import torch

from .normalize import l2_normalize


class LinearSVM:
    """``LinearSVM(C).fit(x, y)``; ``predict(x)``, ``decision_function(x)``. ``x``: N x d array or tensor."""

    def __init__(
        self,
        C: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-4,
        device="cpu",
        dtype: torch.dtype = torch.float32,
        history: int = 100,
    ):
        if C <= 0:
            raise ValueError(f"C must be > 0, got {C}")
        if history < 1:
            raise ValueError(f"history (L-BFGS's stored gradient pairs) must be >= 1, got {history}")
        self.C, self.max_iter, self.tol, self.device, self.dtype = float(C), int(max_iter), float(tol), device, dtype
        self.history = int(history)
        self.W: torch.Tensor | None = None  # (d + 1) x classes, the last row the intercept
        self.classes_: np.ndarray | None = None
        self.n_iter_ = 0

    def _x(self, x) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
        if x.ndim != 2:
            raise ValueError(f"expected N x d features, got shape {tuple(x.shape)}")
        x = x.to(device=self.device, dtype=self.dtype)
        return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], 1)

    def objective(self, x, y) -> np.ndarray:
        """Each class's objective at the fitted weights (for the comparison with LinearSVC)."""
        X, Y = self._x(x), self._targets(y)
        with torch.no_grad():
            return self._per_class(self.W, X, Y).cpu().numpy()

    def _targets(self, y) -> torch.Tensor:
        """+-1 targets, one column per classifier: per class, or (two classes, as LinearSVC) one column, +1 = the
        second class."""
        y = np.asarray(y)
        classes = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
        return torch.as_tensor(
            np.where(y[:, None] == classes[None, :], 1.0, -1.0), device=self.device, dtype=self.dtype
        )

    def _per_class(self, W, X, Y) -> torch.Tensor:
        m = (1 - Y * (X @ W)).clamp_min(0)
        return 0.5 * (W * W).sum(0) + self.C * (m * m).sum(0)

    def fit(self, x, y, W0: torch.Tensor | None = None) -> LinearSVM:
        """Minimise the objective on ``x``, ``y``; ``W0`` ((d + 1) x classifiers, e.g. the weights fitted at a
        neighbouring C: a warm start along a C path) is where L-BFGS starts instead of 0. The objective is strictly
        convex, so the start changes only how many iterations the same minimum takes (to ``tol``)."""
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"{len(x)} feature rows but {len(y)} labels")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError("LinearSVM needs at least two classes")
        X, Y = self._x(x), self._targets(y)
        W = torch.zeros(X.shape[1], Y.shape[1], dtype=X.dtype, device=X.device)
        if W0 is not None:
            if tuple(W0.shape) != tuple(W.shape):
                raise ValueError(f"W0 must be {tuple(W.shape)} ((features + 1) x classifiers), got {tuple(W0.shape)}")
            W.copy_(W0)
        W.requires_grad_(True)
        W.grad = torch.zeros_like(W)
        opt = torch.optim.LBFGS(
            [W],
            lr=1,
            max_iter=self.max_iter,
            history_size=self.history,
            line_search_fn="strong_wolfe",
            tolerance_grad=self.tol,
            tolerance_change=1e-12,
        )
        scale = 1.0 / max(1.0, self.C * len(X))  # keeps the tolerances meaningful whatever the size of C * N
        calls = []

        @torch.no_grad()
        def closure():
            m = (1 - Y * (X @ W)).clamp_min_(0)
            f = (0.5 * (W * W).sum() + self.C * (m * m).sum()) * scale
            G = (Y * m).mul_(-2 * self.C)
            W.grad.copy_((G.T @ X).T).add_(W).mul_(scale)  # (W - 2C X^T (Y m)) * scale
            calls.append(1)
            return f

        opt.step(closure)
        self.W, self.n_iter_ = W.detach(), len(calls)
        return self

    def decision_function(self, x) -> np.ndarray:
        if self.W is None:
            raise RuntimeError("LinearSVM used before fit")
        with torch.no_grad():
            d = (self._x(x) @ self.W).cpu().numpy()
        return d[:, 0] if d.shape[1] == 1 else d

    def predict(self, x) -> np.ndarray:
        d = self.decision_function(x)
        idx = (d > 0).astype(int) if d.ndim == 1 else d.argmax(1)
        return self.classes_[idx]


def linear_kernel(
    A: np.ndarray, B: np.ndarray, cols=None, normalise: bool = True, chunk: int = 512, transform=None
) -> np.ndarray:
    """``K = normalise(A[:, cols]) @ normalise(B[:, cols]).T`` in float64, chunked over float16/32 storage.

    With ``normalise`` each row is L2-normalised over the selected columns (the last post-processing step).
    ``transform`` (elementwise, e.g. a quantiser) is applied to each float32 chunk of rows before the columns are
    selected. ``A`` is read a chunk at a time, so only ``B`` (the training side) is ever held in float32: a
    10,000 x 163,840 float16 test set never becomes a 6.5 GB float32 copy.
    """

    def prep(X):
        for i in range(0, len(X), chunk):
            c = X[i : i + chunk]
            if transform is not None:
                c = transform(c.astype(np.float32))
            c = (c[:, cols] if cols is not None else c).astype(np.float32)
            yield l2_normalize(c) if normalise else c

    bs = list(prep(B))
    K = np.empty((len(A), len(B)), np.float64)
    i = 0
    for a in prep(A):
        j = 0
        for b in bs:
            K[i : i + len(a), j : j + len(b)] = a @ b.T
            j += len(b)
        i += len(a)
    return K


def svm_correct(
    K_train: np.ndarray, y_train, K_test: np.ndarray, y_test, Cs=(10.0,), seed: int = 0
) -> tuple[np.ndarray, float]:
    """Per test item, is it classified right (bool vector) by a linear SVM on a precomputed linear kernel (libsvm's
    dual solver via scikit-learn's ``SVC``, one-vs-one), and the C it used: with several ``Cs``, the one with the
    best 3-fold cross-validated accuracy on the training split (scikit-learn's ``GridSearchCV``, stratified,
    shuffled with ``seed``; ties go to the smaller C), never chosen on the test set.

    The kernel form keeps memory at N x N for 100k+ dimensional representations, and makes concatenation of
    two representations a sum of kernels.
    """
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    if K_train.shape[0] != K_train.shape[1] or K_test.shape[1] != K_train.shape[0]:
        raise ValueError(f"kernel shapes {K_train.shape} (train) and {K_test.shape} (test x train) do not match")
    Cs = sorted(float(c) for c in Cs)
    if len(Cs) == 1:
        clf, C = SVC(kernel="precomputed", C=Cs[0]).fit(K_train, y_train), Cs[0]
    else:
        cv = StratifiedKFold(3, shuffle=True, random_state=seed)
        search = GridSearchCV(SVC(kernel="precomputed"), {"C": Cs}, cv=cv).fit(K_train, y_train)
        clf, C = search.best_estimator_, float(search.best_params_["C"])
    return clf.predict(K_test) == np.asarray(y_test), C


def svm_accuracy(K_train: np.ndarray, y_train, K_test: np.ndarray, y_test, Cs=(10.0,), seed: int = 0) -> float:
    """Test accuracy (%) of :func:`svm_correct`."""
    return 100.0 * float(svm_correct(K_train, y_train, K_test, y_test, Cs, seed)[0].mean())
