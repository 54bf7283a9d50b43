"""The stream source (Parquet/CSV files read in row batches) against the same data in memory, and its faults."""

import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gdlab
from gdlab.scale import closed_form, descend, is_scalable, open_source
from gdlab.sources.gram import GramStats
from gdlab.sources.memory import MemorySource
from gdlab.sources.stream import StreamError, StreamSource, _PairwiseMerge, batch_buffer, batch_stats, unshift

N_FILES, ROWS, D = 3, 700, 3
COLUMNS = ["a", "b", "c"]


def make_data(seed=0, rows=ROWS * N_FILES, mean=None, k=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, D)) * [1.0, 3.0, 0.5]
    if mean is not None:
        X += mean
    W = np.array([[1.5, -2.0, 0.7], [0.3, 1.0, -1.0]])[:k].T
    Y = X @ W + 4.0 + rng.normal(scale=0.5, size=(rows, k))
    return X, Y


def write_files(folder, X, Y, fmt="parquet", n_files=N_FILES, targets=("y",), row_group_size=256, **kw):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, rows in enumerate(np.array_split(np.arange(X.shape[0]), n_files)):
        cols = {c: X[rows, j] for j, c in enumerate(COLUMNS)}
        cols.update({t: Y[rows, j] for j, t in enumerate(targets)})
        table = pa.table(cols)
        path = folder / f"part-{i:03d}.{fmt}"
        if fmt == "parquet":
            pq.write_table(table, path, row_group_size=row_group_size, **kw)
        else:
            pa_csv.write_csv(table, path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module", params=["parquet", "csv"])
def folder(request, tmp_path_factory, data):
    path = tmp_path_factory.mktemp(request.param)
    write_files(path, *data, fmt=request.param)
    return path


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b)))


# ---- same answer as in memory -------------------------------------------------------------------------------------
def test_closed_form_from_a_stream_equals_the_in_memory_closed_form(folder, data):
    X, Y = data
    src = open_source(folder, target="y", batch_rows=200)
    assert src.n_samples == X.shape[0] and src.feature_names == COLUMNS
    got = closed_form(src)
    want = gdlab.closed_form(X, Y[:, 0])
    assert rel(got.coef, want.coef) < 1e-10
    assert abs(got.intercept - want.intercept) / abs(want.intercept) < 1e-10
    assert got.loss == pytest.approx(want.loss, rel=1e-10)


def test_statistics_keep_their_digits_when_columns_have_means_of_1e8(tmp_path):
    X, Y = make_data(seed=3, mean=np.array([1e8, -3e8, 5e7]))
    write_files(tmp_path, X, Y)
    stats = StreamSource(tmp_path, "y", batch_rows=100).gram_stats()
    # reference: two-pass centring in extended precision
    Z = np.column_stack([X, Y]).astype(np.longdouble)
    mean = Z.mean(axis=0)
    C = (Z - mean).T @ (Z - mean)
    scale = np.sqrt(np.outer(np.diag(C), np.diag(C))).astype(float)
    assert np.max(np.abs(stats.comoment - C.astype(float)) / scale) < 1e-12
    np.testing.assert_allclose(stats.mean, mean.astype(float), rtol=1e-15)
    # the test has teeth: the textbook one-pass formula loses every digit here
    Zf = Z.astype(float)
    naive = Zf.T @ Zf - Zf.shape[0] * np.outer(Zf.mean(axis=0), Zf.mean(axis=0))
    assert np.max(np.abs(naive - C.astype(float)) / scale) > 1e-3
    # and the in-memory statistics agree
    mem = GramStats.from_arrays(X, Y)
    assert np.max(np.abs(stats.comoment - mem.comoment) / scale) < 1e-12


def test_statistics_keep_their_digits_when_files_are_sorted_and_columns_drift(tmp_path):
    X, Y = make_data(seed=4)
    X[:, 0] = 1e8 + 1e3 * np.arange(X.shape[0])  # sorted: every batch's mean is far from the first batch's
    X[:, 1] += np.where(np.arange(X.shape[0]) < 1000, 0.0, 1e6)  # a jump between files
    write_files(tmp_path, X, Y)
    stats = StreamSource(tmp_path, "y", batch_rows=128).gram_stats()
    Z = np.column_stack([X, Y]).astype(np.longdouble)
    C = (Z - Z.mean(axis=0)).T @ (Z - Z.mean(axis=0))
    scale = np.sqrt(np.outer(np.diag(C), np.diag(C))).astype(float)
    assert np.max(np.abs(stats.comoment - C.astype(float)) / scale) < 1e-12


def test_several_targets_are_fitted_side_by_side(tmp_path):
    X, Y = make_data(seed=5, k=2)
    write_files(tmp_path, X, Y, targets=("y0", "y1"))
    src = open_source(tmp_path, target=["y0", "y1"], features=COLUMNS)
    got = closed_form(src)
    want = gdlab.closed_form(X, Y)
    assert got.coef.shape == (3, 2)
    assert rel(got.coef, want.coef) < 1e-10 and rel(got.intercept, want.intercept) < 1e-10


def test_full_batch_descent_on_a_stream_gives_the_in_memory_iterates(folder, data):
    X, Y = data
    src = open_source(folder, target="y", batch_rows=300)
    kw = dict(learning_rate=0.05, max_iter=40, tol=None, gtol=None)
    got = gdlab.descend(src, None, **kw)
    want = gdlab.descend(X, Y[:, 0], source="memory", **kw)
    assert got.source == "stream"
    np.testing.assert_allclose(got.trajectory.params, want.trajectory.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.trajectory.loss, want.trajectory.loss, rtol=1e-10)
    assert src.passes == 1  # the squared error needs one pass, whatever the number of iterations


def test_a_robust_loss_makes_a_pass_per_evaluation_and_matches_memory(folder, data):
    X, Y = data
    src = open_source(folder, target="y", batch_rows=300, loss="huber", epsilon=1.0)
    kw = dict(learning_rate=0.2, max_iter=15, tol=None, gtol=None)
    got = descend(src, **kw)  # gdlab.descend with the source's own loss
    want = gdlab.descend(X, Y[:, 0], source="memory", loss="huber", epsilon=1.0, **kw)
    np.testing.assert_allclose(got.trajectory.params, want.trajectory.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.trajectory.loss, want.trajectory.loss, rtol=1e-10)
    assert src.passes >= 16  # one per evaluation (plus the statistics for the curvature)
    with pytest.raises(ValueError, match="the source computes loss='huber'"):
        descend(src, loss="squared_error")  # a source opened for one loss is not descended with another


# ---- mini-batches -----------------------------------------------------------------------------------------------
def epoch_rows(src, rng, batch_size=64):
    batches = list(src.iter_batches(batch_size, rng, shuffle=True))
    assert all(b.n_samples == batch_size for b in batches[:-1]) and 0 < batches[-1].n_samples <= batch_size
    return np.vstack([np.column_stack([b.X, b.Y]) for b in batches])


def test_mini_batches_visit_every_row_once_per_epoch_in_a_new_order(folder, data):
    X, Y = data
    src = open_source(folder, target="y", batch_rows=128)
    rng = np.random.default_rng(1)
    first, second = epoch_rows(src, rng), epoch_rows(src, rng)
    everything = np.column_stack([X, Y])
    for rows in (first, second):
        np.testing.assert_array_equal(np.unique(rows, axis=0), np.unique(everything, axis=0))
        assert rows.shape == everything.shape
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(epoch_rows(src, np.random.default_rng(1)), first)  # seeded: reproducible


def test_mini_batch_descent_equals_a_numpy_transcription_over_the_same_batches(folder):
    src = open_source(folder, target="y", batch_rows=256)
    eta, epochs, batch_size = 0.01, 3, 100
    got = gdlab.descend(src, None, optimizer="gd", learning_rate=eta, batch_size=batch_size, max_iter=epochs,
                        tol=None, gtol=None, random_state=7)
    # reference: the workshop's update w <- w - eta (2/b) X_b^T (X_b w - y), over the batches the stream hands out
    rng = np.random.default_rng(7)
    w = np.zeros(D + 1)
    for _ in range(epochs):
        for batch in src.iter_batches(batch_size, rng, shuffle=True):
            Xb = np.column_stack([np.ones(batch.n_samples), batch.X])
            w = w - eta * 2.0 / batch.n_samples * Xb.T @ (Xb @ w - batch.Y[:, 0])
    np.testing.assert_allclose(got.params, w, rtol=1e-10)
    assert got.n_updates == epochs * int(np.ceil(src.n_samples / batch_size))


def test_progress_reports_every_row_of_each_pass(folder, data):
    seen = []
    def progress(done, total):
        seen.append((done, total))

    with open_source(folder, target="y", batch_rows=500, progress=progress) as src:
        src.gram_stats()
    m = data[0].shape[0]
    assert seen[-1][0] == m and all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
    assert all(total in (m, None) for _, total in seen)


# ---- faults: a clear error naming the file, never a silent wrong answer ----------------------------------------
@pytest.fixture
def parquet_folder(tmp_path, data):
    paths = write_files(tmp_path / "pq", *data, write_page_checksum=True)
    return tmp_path / "pq", paths


def test_a_truncated_parquet_file_is_named(parquet_folder):
    folder, paths = parquet_folder
    raw = paths[1].read_bytes()
    paths[1].write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StreamError, match="part-001.parquet.*corrupt") as err:
        open_source(folder, target="y")
    assert err.value.path == str(paths[1])


def test_a_corrupt_page_is_named_not_read_as_numbers(parquet_folder):
    folder, paths = parquet_folder
    raw = bytearray(paths[2].read_bytes())
    raw[200:240] = bytes(b ^ 0xFF for b in raw[200:240])  # inside the first data page; footer intact
    paths[2].write_bytes(bytes(raw))
    src = open_source(folder, target="y")
    with pytest.raises(StreamError, match="part-002.parquet") as err:
        src.gram_stats()
    assert err.value.path == str(paths[2])


def test_a_column_missing_from_one_file_is_named(tmp_path, data):
    X, Y = data
    write_files(tmp_path, X, Y)
    t = pq.read_table(tmp_path / "part-001.parquet").drop_columns(["b"])
    pq.write_table(t, tmp_path / "part-001.parquet")
    # pyarrow alone would fill the column with nulls; gdlab refuses
    with pytest.raises(StreamError, match=r"part-001.parquet: the file has no column 'b'"):
        open_source(tmp_path, target="y")


def test_a_non_numeric_column_is_named(tmp_path, data):
    X, Y = data
    write_files(tmp_path, X, Y)
    t = pq.read_table(tmp_path / "part-000.parquet")
    t = t.append_column("city", pa.array(["Oslo"] * t.num_rows))
    pq.write_table(t, tmp_path / "part-000.parquet")
    with pytest.raises(StreamError, match=r"part-000.parquet: feature column 'city' is not numeric"):
        open_source(tmp_path, target="y")
    # naming the features leaves it out
    assert open_source(tmp_path, target="y", features=COLUMNS).n_features == 3


def test_a_word_among_the_numbers_of_a_csv_is_named(tmp_path, data):
    X, Y = data
    paths = write_files(tmp_path, X, Y, fmt="csv")
    lines = paths[2].read_text().splitlines()
    row = len(lines) - 3
    cells = lines[row].split(",")
    cells[1] = "n/a?"
    lines[row] = ",".join(cells)
    paths[2].write_text("\n".join(lines) + "\n")
    with pytest.raises(StreamError, match=r"part-002.csv"):
        closed_form(open_source(tmp_path, target="y"))


def test_nan_and_null_values_are_named_with_their_row(tmp_path, data):
    X, Y = data
    X = X.copy()
    X[ROWS + 17, 2] = np.nan  # file 1, row 17
    write_files(tmp_path, X, Y)
    with pytest.raises(StreamError, match=r"part-001.parquet: column 'c' holds NaN at row 17"):
        open_source(tmp_path, target="y", batch_rows=64).gram_stats()
    t = pq.read_table(tmp_path / "part-001.parquet")
    t = t.set_column(2, "c", pa.array([None if i == 17 else 1.0 for i in range(t.num_rows)], pa.float64()))
    pq.write_table(t, tmp_path / "part-001.parquet")
    with pytest.raises(StreamError, match=r"part-001.parquet: column 'c' is missing a value \(null\) at row 17"):
        open_source(tmp_path, target="y", batch_rows=64).gram_stats()


def test_a_file_that_changes_between_passes_is_reported(tmp_path, data):
    X, Y = data
    write_files(tmp_path, X, Y)
    src = open_source(tmp_path, target="y", loss="huber")
    src.gram_stats()
    t = pq.read_table(tmp_path / "part-000.parquet")
    pq.write_table(t.slice(0, 100), tmp_path / "part-000.parquet")
    src = open_source(tmp_path, target="y", loss="huber")
    pq.write_table(t, tmp_path / "part-000.parquet")
    with pytest.raises(StreamError, match="part-000.parquet: read 700 rows but the file held 100"):
        src.gram_stats()


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "nowhere", "no such file or folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "holds no"),
    (lambda p: (p / "x.json").write_text("{}") and p / "x.json", "unknown file type"),
])
def test_bad_paths_get_one_clear_error(tmp_path, make, message):
    with pytest.raises(StreamError, match=message):
        open_source(make(tmp_path), target="y")


def test_a_folder_mixing_formats_and_a_missing_target_are_refused(tmp_path, data):
    X, Y = data
    write_files(tmp_path, X, Y, n_files=1)
    write_files(tmp_path, X, Y, fmt="csv", n_files=1)
    with pytest.raises(StreamError, match="mixes file formats"):
        open_source(tmp_path, target="y")
    os.remove(tmp_path / "part-000.csv")
    with pytest.raises(ValueError, match="target is missing"):
        open_source(tmp_path)
    with pytest.raises(ValueError, match="Arrays in memory need no source"):
        open_source(X, target=Y)
    assert is_scalable(tmp_path) and not is_scalable(X)


# ---- the batch statistics, for all inputs ---------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 300), q=st.integers(2, 7),
       offset=st.sampled_from([0.0, 1e3, 1e8]), cuts=st.lists(st.integers(1, 299), max_size=6),
       padded=st.booleans())
def test_batch_statistics_merged_in_any_split_equal_the_one_pass_statistics(seed, rows, q, offset, cuts, padded):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(rows, q)) * rng.uniform(0.1, 10, size=q) + offset * rng.uniform(-1, 1, size=q)
    bounds = sorted({0, rows, *[c for c in cuts if c < rows]})
    shift = Z[: bounds[1]].mean(axis=0)
    merge = _PairwiseMerge()
    for a, b in zip(bounds, bounds[1:]):
        if padded:
            buf = batch_buffer(q, b - a)
            buf[:q] = Z[a:b].T
            merge.add(batch_stats(buf, q - 1, shift, n_columns=q))
        else:
            merge.add(batch_stats(np.array(Z[a:b].T), q - 1, shift))
    got = unshift(merge.result(q - 1, 1), shift)
    Zl = Z.astype(np.longdouble)
    C = ((Zl - Zl.mean(axis=0)).T @ (Zl - Zl.mean(axis=0))).astype(float)
    assert got.n_rows == rows and got.n == rows
    np.testing.assert_allclose(got.mean, Zl.mean(axis=0).astype(float), rtol=1e-13, atol=1e-13)
    scale = np.sqrt(np.outer(np.diag(C), np.diag(C))) + 1e-300
    assert np.max(np.abs(got.comoment - C) / scale) < 1e-11


def test_a_csv_cut_in_the_middle_of_a_row_is_named(tmp_path, data):
    X, Y = data
    paths = write_files(tmp_path, X, Y, fmt="csv")
    text = paths[1].read_text()
    paths[1].write_text(text[: len(text) - 30])  # the last row loses its last columns
    with pytest.raises(StreamError, match=r"part-001.csv") as err:
        closed_form(open_source(tmp_path, target="y"))
    assert err.value.path == str(paths[1])


def test_a_file_removed_during_the_fit_is_named(tmp_path, data):
    X, Y = data
    paths = write_files(tmp_path, X, Y)
    src = open_source(tmp_path, target="y")
    paths[2].unlink()
    with pytest.raises(StreamError, match=r"part-002.parquet: the file was removed during the fit"):
        src.gram_stats()


@pytest.mark.parametrize("loss", ["log_loss", "poisson"])
def test_logistic_and_poisson_on_a_stream_give_the_in_memory_iterates(tmp_path, loss):
    """A pass over the files per evaluation (0/1 labels read as -1/+1 in each batch), the same iterates as in
    memory to 1e-10, on raw and on standardized coordinates."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(2100, D)) * [1.0, 3.0, 0.5]
    eta = X @ [0.4, -0.2, 0.8] + 0.3
    y = ((rng.random(2100) < 1 / (1 + np.exp(-eta))).astype(float) if loss == "log_loss"
         else rng.poisson(np.exp(eta)).astype(float))
    write_files(tmp_path, X, y[:, None])
    src = open_source(tmp_path, target="y", batch_rows=300, loss=loss)
    for kw in (dict(learning_rate=0.2, max_iter=12, tol=None, gtol=None),
               dict(max_iter=12, tol=None, gtol=None, optimizer="nesterov")):
        got = descend(src, **kw)
        want = gdlab.descend(X, y, source="memory", loss=loss, **kw)
        np.testing.assert_allclose(got.trajectory.params, want.trajectory.params, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.trajectory.loss, want.trajectory.loss, rtol=1e-10)


def test_a_streamed_glm_with_the_default_step_claims_convergence_from_its_own_hessian_pass(tmp_path):
    """The default fit (standardized, 'auto' step, tol) checks its claim with the Newton decrement, which needs the
    Hessian: the stream makes it in one pass, equal to the in-memory one, and reaches the same minimum."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(2100, D)) * [1.0, 30.0, 0.05] + [0.0, 100.0, 0.0]
    y = (rng.random(2100) < 1 / (1 + np.exp(-(X @ [0.4, -0.01, 8.0] + 0.3)))).astype(float)
    write_files(tmp_path, X, y[:, None])
    src = open_source(tmp_path, target="y", batch_rows=300, loss="log_loss")
    mem = MemorySource(X, 2.0 * y[:, None] - 1.0, None, src.loss, True)
    W, b = rng.normal(size=(D, 1)), np.array([0.2])
    np.testing.assert_allclose(src.hessian(W, b), mem.hessian(W, b), rtol=1e-12)
    got = descend(src, loss="log_loss", penalty="l2", alpha=1e-3)
    want = gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=1e-3)
    assert got.converged and want.converged, got.message
    assert abs(got.loss - want.loss) <= 1e-9 * want.loss
    np.testing.assert_allclose(got.coef, want.coef, rtol=1e-5)


def test_streamed_mini_batches_read_0_1_labels_as_the_in_memory_ones(tmp_path):
    """Each mini-batch of a stream reads 0/1 labels as -1/+1, as the passes do: the class-0 rows count (they were
    read as 0 and gave no gradient)."""
    rng = np.random.default_rng(12)
    X = rng.normal(size=(1200, D))
    y = (rng.random(1200) < 1 / (1 + np.exp(-(X @ [1.0, -1.0, 0.5])))).astype(float)
    write_files(tmp_path, X, y[:, None])
    src = open_source(tmp_path, target="y", batch_rows=300, loss="log_loss")
    kw = dict(loss="log_loss", batch_size=50, learning_rate=0.05, max_iter=2, tol=None, shuffle=False,
              engine="numpy")
    got = descend(src, **kw)
    want = gdlab.descend(X, y, source="memory", **kw)
    np.testing.assert_allclose(got.coef, want.coef, rtol=1e-10)
