"""The trajectory's byte budget (issue 12): the recorder keeps the loss, gradient norm and step of every recorded
iteration, but never more than ``max_bytes`` of iterates; past it the stored iterates are thinned (every second
one dropped, ``coef_stride`` doubled), evenly spread, the first and the last kept exactly.

References: the bytes are counted on the arrays the Trajectory holds (``ndarray.nbytes``); the iterates and losses
fed to the recorder are the test's own; a plain NumPy gradient-descent loop gives the path of a small fit; and the
pre-budget recorder, transcribed below, gives what small fits recorded before."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import gdlab
import gdlab.result as result_module
from gdlab import GDRegressor
from gdlab.exceptions import DivergenceWarning
from gdlab.result import ITERATE_BUDGET_BYTES, Trajectory, TrajectoryRecorder


class OldRecorder:
    """The recorder before the byte budget, as it was (the reference for 'small fits are unchanged')."""

    def __init__(self, record_every=1, max_records=100_000):
        self.stride = max(1, int(record_every))
        self.max_records = None if max_records is None else max(2, int(max_records))
        self.rows = []
        self._last = None

    def add(self, iteration, params, loss, grad_norm, learning_rate):
        row = (int(iteration), params.copy(), float(loss), float(grad_norm), float(learning_rate))
        self._last = row
        if iteration % self.stride:
            return
        self.rows.append(row)
        if self.max_records is not None and len(self.rows) > self.max_records:
            self.stride *= 2
            self.rows = [r for r in self.rows if r[0] % self.stride == 0]

    def finish(self):
        rows = list(self.rows)
        if self._last is not None and (not rows or rows[-1][0] != self._last[0]):
            rows.append(self._last)
        return rows


def feed(recorders, n_iter, shape, seed=0, check=None):
    """Add iterations 0..n_iter of random iterates to every recorder; returns what was fed."""
    rng = np.random.default_rng(seed)
    fed = []
    for it in range(n_iter + 1):
        params = rng.standard_normal(shape)
        loss, gnorm, lr = rng.random(3)
        fed.append((it, params, loss, gnorm, lr))
        for r in recorders:
            r.add(it, params, loss, gnorm, lr)
        if check is not None:
            check(it)
    return fed


def trajectory_bytes(traj: Trajectory) -> int:
    return traj.coef.nbytes + traj.intercept.nbytes


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("record_every, max_records", [(1, None), (3, None), (1, 40), (2, 7)])
@pytest.mark.parametrize("n_iter", [0, 1, 57, 500])
def test_the_budget_holds_and_the_first_last_and_every_loss_are_kept(fit_intercept, k, record_every, max_records,
                                                                    n_iter):
    d = 20
    p = d + (1 if fit_intercept else 0)
    budget = 12 * (d + 1) * k * 8  # room for about a dozen iterates
    rec = TrajectoryRecorder(record_every, max_records, max_bytes=budget)
    ref = OldRecorder(record_every, max_records)  # what rows (iterations, losses) are kept without a budget

    def check(it):
        assert rec.nbytes <= budget or len(rec.iterates) == 1

    fed = feed([rec, ref], n_iter, (p, k), check=check)
    traj = rec.finish(fit_intercept, single=k == 1)
    assert trajectory_bytes(traj) <= budget
    # every recorded row's loss, gradient norm and step, as the unbudgeted recorder kept them
    rows = ref.finish()
    np.testing.assert_array_equal(traj.iteration, [r[0] for r in rows])
    np.testing.assert_array_equal(traj.loss, [r[2] for r in rows])
    np.testing.assert_array_equal(traj.grad_norm, [r[3] for r in rows])
    np.testing.assert_array_equal(traj.learning_rate, [r[4] for r in rows])
    # the kept iterates are the very iterates of their iterations, the first and the last among them
    kept = traj.coef_iteration
    assert kept[0] == 0 and kept[-1] == n_iter
    for row, it in enumerate(kept):
        packed = fed[it][1]
        W = packed[1:] if fit_intercept else packed
        np.testing.assert_array_equal(traj.coef[row], W[:, 0] if k == 1 else W)
        np.testing.assert_array_equal(traj.intercept[row], (packed[0] if fit_intercept else np.zeros(k))
                                      if k > 1 else (packed[0, 0] if fit_intercept else 0.0))
    # evenly spread: every multiple of coef_stride recorded before the last, and nothing else but the last
    inner = kept[:-1] if kept[-1] % traj.coef_stride else kept
    np.testing.assert_array_equal(inner, np.arange(0, n_iter + 1, traj.coef_stride)[:len(inner)])
    assert traj.coef_stride % traj.stride == 0
    assert traj.thinned == (len(kept) < len(traj.iteration))


def test_small_fits_record_what_they_recorded_before_the_budget():
    rec, ref = TrajectoryRecorder(1, 50), OldRecorder(1, 50)  # the default budget
    feed([rec, ref], 300, (6, 1), seed=4)
    traj, rows = rec.finish(True, True), ref.finish()
    assert not traj.thinned and traj.coef_stride == traj.stride == ref.stride
    np.testing.assert_array_equal(traj.coef_iteration, traj.iteration)
    np.testing.assert_array_equal(traj.params, np.stack([r[1][:, 0] for r in rows]))


def test_descend_on_a_small_problem_keeps_every_iterate_of_the_numpy_loop():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    y = X @ [1.0, -2.0, 0.5] + 3.0 + 0.1 * rng.standard_normal(50)
    eta, n = 0.05, 40
    res = gdlab.descend(X, y, optimizer="gd", learning_rate=eta, max_iter=n, tol=None, standardize=False,
                        source="memory")
    Xb = np.column_stack([np.ones(50), X])
    w = np.zeros(4)
    path = [w]
    for _ in range(n):
        w = w - eta * (2 / 50) * Xb.T @ (Xb @ w - y)
        path.append(w)
    traj = res.trajectory
    assert not traj.thinned and traj.coef_stride == 1
    np.testing.assert_array_equal(traj.coef_iteration, np.arange(n + 1))
    np.testing.assert_allclose(traj.params, np.array(path), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(traj.loss, [np.mean((Xb @ p - y) ** 2) for p in path], rtol=1e-12)


@pytest.fixture
def wide_problem():
    rng = np.random.default_rng(1)
    X = sp.random(300, 5000, density=0.01, random_state=2, format="csr") * 3.0
    y = X @ rng.standard_normal(5000) + 1.0
    return X, y


def test_descend_thins_the_iterates_of_a_wide_fit_and_keeps_every_loss(wide_problem, monkeypatch):
    X, y = wide_problem
    kw = dict(optimizer="gd", learning_rate=0.02, max_iter=150, tol=None, standardize=False, source="memory")
    full = gdlab.descend(X, y, **kw).trajectory
    assert trajectory_bytes(full) == 151 * 5001 * 8  # without thinning: every iterate (the budget is 64 MiB)
    budget = 1_000_000
    monkeypatch.setattr(result_module, "ITERATE_BUDGET_BYTES", budget)
    res = gdlab.descend(X, y, **kw)
    traj = res.trajectory
    assert traj.thinned and trajectory_bytes(traj) <= budget
    assert traj.coef_stride > 1 and 10 < len(traj.coef_iteration) <= budget // (5001 * 8)
    np.testing.assert_array_equal(traj.iteration, full.iteration)
    np.testing.assert_array_equal(traj.loss, full.loss)
    np.testing.assert_array_equal(traj.grad_norm, full.grad_norm)
    np.testing.assert_array_equal(traj.coef, full.coef[traj.coef_iteration])
    np.testing.assert_array_equal(traj.intercept, full.intercept[traj.coef_iteration])
    np.testing.assert_array_equal(traj.coef[-1], res.coef)
    assert traj.coef_iteration[0] == 0 and traj.coef_iteration[-1] == 150
    frame = traj.to_frame()
    assert len(frame) == 151 and list(frame.columns[:3]) == ["iteration", "intercept", "w1"]
    np.testing.assert_array_equal(frame["loss"], full.loss)
    kept = np.isin(frame["iteration"], traj.coef_iteration)
    np.testing.assert_array_equal(frame.loc[kept, "w7"], full.coef[traj.coef_iteration, 6])
    assert frame.loc[~kept, ["intercept", "w7"]].isna().all().all()
    data = traj.to_dict()
    assert data["coef_stride"] == traj.coef_stride and data["coef_iteration"] == traj.coef_iteration.tolist()


def test_a_multi_output_frame_of_a_thinned_trajectory_lines_up(monkeypatch):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 30))
    Y = X @ rng.standard_normal((30, 2))
    monkeypatch.setattr(result_module, "ITERATE_BUDGET_BYTES", 10 * 31 * 2 * 8)
    res = gdlab.descend(X, Y, learning_rate=0.01, max_iter=60, tol=None, standardize=False, source="memory")
    traj = res.trajectory
    assert traj.thinned and trajectory_bytes(traj) <= 10 * 31 * 2 * 8
    frame = traj.to_frame()
    row = int(traj.coef_rows[-2])
    assert frame["iteration"][row] == traj.coef_iteration[-2]
    assert frame["w30_1"][row] == traj.coef[-2, 29, 1] and frame["intercept_0"][row] == traj.intercept[-2, 0]
    np.testing.assert_array_equal(traj.coef[-1], res.coef)


def test_the_estimator_bounds_a_wide_sparse_fit_and_keeps_its_path(wide_problem, monkeypatch):
    X, y = wide_problem
    kw = dict(penalty=None, learning_rate="constant", eta0=0.02, max_iter=150, tol=None)
    full = GDRegressor(**kw).fit(X, y)
    monkeypatch.setattr(result_module, "ITERATE_BUDGET_BYTES", 2_000_000)
    est = GDRegressor(**kw).fit(X, y)
    traj = est.trajectory_
    assert traj.thinned and trajectory_bytes(traj) <= 2_000_000
    np.testing.assert_array_equal(est.coef_, full.coef_)
    np.testing.assert_array_equal(traj.loss, full.trajectory_.loss)
    np.testing.assert_array_equal(traj.coef, full.trajectory_.coef[traj.coef_iteration])


def test_a_diverged_fit_keeps_the_lowest_loss_among_the_kept_iterates(monkeypatch):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((60, 40)) * 3.0
    y = X @ rng.standard_normal(40)
    monkeypatch.setattr(result_module, "ITERATE_BUDGET_BYTES", 6 * 41 * 8)
    est = GDRegressor(penalty=None, learning_rate="constant", eta0=0.05, max_iter=200, tol=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        est.fit(X, y)
    traj = est.trajectory_
    assert est.diverged_ and traj.thinned
    rows = traj.coef_rows
    best = int(np.nanargmin(np.where(np.isfinite(traj.loss[rows]), traj.loss[rows], np.nan)))
    np.testing.assert_array_equal(est.coef_, traj.coef[best])
    # the loss reported is the one of those weights: the MSE recomputed here
    assert est.loss_ == pytest.approx(np.mean((X @ est.coef_ + est.intercept_[0] - y) ** 2), rel=1e-12)


def test_the_default_budget_is_64_mib_and_a_bad_budget_is_refused():
    assert ITERATE_BUDGET_BYTES == 64 * 2**20
    assert TrajectoryRecorder().max_bytes == 64 * 2**20
    assert TrajectoryRecorder(max_bytes=None).max_bytes is None
    with pytest.raises(ValueError, match="max_bytes"):
        TrajectoryRecorder(max_bytes="lots")


def test_a_trajectory_built_by_hand_holds_every_iterate_and_checks_its_rows():
    its = np.arange(4)
    traj = Trajectory(iteration=its, coef=np.zeros((4, 2)), intercept=np.zeros(4), loss=np.ones(4),
                      grad_norm=np.ones(4), learning_rate=np.ones(4))
    assert not traj.thinned and traj.coef_stride == 1
    np.testing.assert_array_equal(traj.coef_iteration, its)
    with pytest.raises(ValueError, match="coef_iteration"):
        Trajectory(iteration=its, coef=np.zeros((3, 2)), intercept=np.zeros(3), loss=np.ones(4),
                   grad_norm=np.ones(4), learning_rate=np.ones(4))
