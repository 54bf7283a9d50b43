"""Library-level promises of issue 13: no silent wrong answer (complex input, corrupted Parquet pages, folder schemas
that depend on the order of the files), and messages that name the real fault (pd.NA, negative weights, a bad
scheduler address), with limits on grids checked before any work."""

import os
import time
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gdlab
from gdlab.io import DataError, load_table
from gdlab.scale import open_source
from gdlab.sources.stream import StreamError

X = np.array([[1.0, 0.5], [2.0, 1.5], [3.0, 0.0], [4.0, 2.0], [5.0, 1.0]])
Y = X @ [2.0, -1.0] + 0.5


# ---- complex numbers are refused, not cut to their real part ----------------------------------------------------

def test_complex_features_are_refused_by_descend():
    Xc = X.astype(complex)
    Xc[3, 1] += 2j
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's ComplexWarning was the only sign before
        with pytest.raises(ValueError, match=r"X holds complex numbers \(\(2\+2j\) at row 3, column 1\)"):
            gdlab.descend(Xc, Y, warn=False)
        with pytest.raises(ValueError, match=r"y holds complex numbers"):
            gdlab.descend(X, Y + 1j, warn=False)
    # a complex array whose imaginary parts are all 0 holds real numbers: it is fitted as they are
    r = gdlab.descend(X.astype(complex), Y, warn=False)
    assert r.coef == pytest.approx(gdlab.descend(X, Y, warn=False).coef)


def test_a_complex_npy_column_is_refused_by_load_table(tmp_path):
    arr = np.c_[X, Y].astype(complex)
    arr[2, 0] = 3 - 1j
    np.save(tmp_path / "c.npy", arr)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=r"c.npy: column '0' holds complex numbers \(row 2 is \(3-1j\)\)"):
            load_table(tmp_path / "c.npy", "-1")


# ---- the real fault named ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["Float64", "Int64", "object"])
def test_a_pandas_missing_value_is_called_missing_not_non_numeric(dtype):
    values = [1, 2, pd.NA, 4, 5] if dtype != "object" else [1.0, 2.0, pd.NA, 4.0, 5.0]
    frame = pd.DataFrame({"a": pd.array(values, dtype=dtype), "b": X[:, 1]})
    with pytest.raises(ValueError, match=r"X holds a missing value \(pd.NA\) at row 2, column 'a'.*impute"):
        gdlab.descend(frame, Y, warn=False)


def test_all_negative_sample_weights_are_called_negative_not_summing_to_zero():
    from gdlab._validation import check_sample_weight_values

    with pytest.raises(ValueError, match="negative for every row"):
        gdlab.descend(X, Y, sample_weight=-np.ones(5), warn=False)
    with pytest.raises(ValueError, match="negative for every row"):
        check_sample_weight_values(np.full(3, -2.0))
    with pytest.raises(ValueError, match=r"non-negative, got -1.0 at row 1 \(1 negative weights in all\)"):
        check_sample_weight_values(np.array([1.0, -1.0, 2.0]))
    with pytest.raises(ValueError, match="zero for every row"):
        check_sample_weight_values(np.zeros(3))
    check_sample_weight_values(np.array([0.0, 1.0, 2.0]))


def test_a_malformed_scheduler_address_is_refused_at_once():
    pytest.importorskip("distributed")
    from gdlab.sources.dask import check_scheduler_address

    for address in ("not a url", "tcp://host", "http://host:8786", "tcp://host:99999", ""):
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match="not a Dask scheduler address"):
            check_scheduler_address(address)
        assert time.perf_counter() - t0 < 1.0
    with pytest.raises(ValueError, match="nothing answers there"):
        check_scheduler_address("tcp://127.0.0.1:1")


# ---- Parquet page checksums ----------------------------------------------------------------------------------------

def _write(path, checksums, **kw):
    x = np.arange(300, dtype=float)
    pq.write_table(pa.table({"x": x, "y": 2 * x + 1}), path, write_page_checksum=checksums, compression="none",
                   use_dictionary=False, **kw)
    return path


def _flip_a_byte_in_a_data_page(path):
    col = pq.ParquetFile(path).metadata.row_group(0).column(0)
    raw = bytearray(path.read_bytes())
    raw[col.data_page_offset + col.total_compressed_size // 2] ^= 0x40
    path.write_bytes(bytes(raw))


def test_page_checksums_are_detected_from_the_first_page_header(tmp_path):
    from gdlab.io import parquet_page_checksums

    assert parquet_page_checksums(_write(tmp_path / "a.parquet", True)) is True
    assert parquet_page_checksums(_write(tmp_path / "b.parquet", False)) is False
    pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]}).to_parquet(tmp_path / "c.parquet")  # dictionary pages
    assert parquet_page_checksums(tmp_path / "c.parquet") is False
    pq.write_table(pa.table({"x": pa.array([1.0, 2.0]), "s": ["a", "b"]}), tmp_path / "d.parquet",
                   write_page_checksum=True)
    assert parquet_page_checksums(tmp_path / "d.parquet") is True


def test_a_corrupted_page_with_a_checksum_is_an_error_in_memory_too(tmp_path):
    path = _flip_a_byte_in_a_data_page(_write(tmp_path / "bad.parquet", True)) or tmp_path / "bad.parquet"
    with pytest.raises(DataError, match=r"bad.parquet: a page of the file fails its checksum"):
        load_table(path, "y")


def test_a_parquet_file_without_checksums_gets_one_integrity_warning(tmp_path):
    from gdlab.io import IntegrityWarning

    with pytest.warns(IntegrityWarning, match=r"plain.parquet was written without page checksums"):
        load_table(_write(tmp_path / "plain.parquet", False), "y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_table(_write(tmp_path / "sum.parquet", True), "y")
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(3):
        _write(folder / f"part-{i}.parquet", checksums=(i == 1))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        open_source(folder, "y")
    integrity = [w for w in seen if issubclass(w.category, IntegrityWarning)]
    assert len(integrity) == 1  # once for the folder, not once per file
    assert "2 of the 3 files" in str(integrity[0].message) and "part-0.parquet" in str(integrity[0].message)


# ---- a folder's schema rule does not depend on the order of its files ----------------------------------------------

@pytest.mark.filterwarnings("ignore:.*page checksums")
@pytest.mark.parametrize("extra_in", ["part-0.parquet", "part-1.parquet"])
def test_a_column_only_some_files_have_is_an_error_in_either_order(tmp_path, extra_in):
    for name in ("part-0.parquet", "part-1.parquet"):
        frame = pd.DataFrame({"x": X[:, 0], "y": Y})
        if name == extra_in:
            frame.insert(1, "z", X[:, 1])
        frame.to_parquet(tmp_path / name)
    with pytest.raises(StreamError, match=r"part-1.parquet: the file has .*'z'.*every file must hold the same "
                                          r"columns"):
        open_source(tmp_path, "y")
    src = open_source(tmp_path, "y", features=["x"])  # naming the features the files share is fine
    assert src.n_samples == 2 * len(Y)


def test_a_fifo_inside_a_folder_or_as_the_path_is_named(tmp_path):
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(StreamError, match=r"pipe.csv is a named pipe \(FIFO\), not a regular file"):
        open_source(tmp_path / "pipe.csv", "y")
    with pytest.raises(StreamError, match=r"pipe.csv is a named pipe \(FIFO\)"):
        open_source(tmp_path, "y")
    with pytest.raises(DataError, match=r"pipe.csv is a named pipe \(FIFO\)"):
        load_table(tmp_path / "pipe.csv", "y")


def test_an_overflowing_streamed_column_is_named(tmp_path):
    pd.DataFrame({"x": [1e308, 1.5e308, -1e308], "y": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "big.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy overflow warnings before the error
        with pytest.raises(StreamError, match=r"big.csv: column 'x' holds values of about 1.5e\+308"):
            open_source(tmp_path / "big.csv", "y").gram_stats()
        with pytest.raises(DataError, match=r"big.csv: column 'x' holds values as large as 1.5e\+308"):
            load_table(tmp_path / "big.csv", "y")


# ---- grids from text are bounded before anything is allocated ------------------------------------------------------

def test_sweep_grids_are_bounded_before_any_work():
    from gdlab.sweep import MAX_STEPS, check_grid, parse_iterations, parse_learning_rates

    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="at most 1,000"):
        parse_learning_rates("1e-3:1:1000000000")
    with pytest.raises(ValueError, match="at most 1,000"):
        parse_learning_rates(",".join(["0.1"] * 1001))
    with pytest.raises(ValueError, match="10,000,000"):
        parse_iterations("10,1e12")
    with pytest.raises(ValueError, match="at most 100"):
        parse_iterations(",".join(["5"] * 101))
    with pytest.raises(ValueError, match=f"{MAX_STEPS:,}"):
        check_grid(parse_learning_rates("1e-3:1:1000"), parse_iterations("1000000"))
    assert time.perf_counter() - t0 < 0.5
    assert parse_iterations("10,1e3").tolist() == [10, 1000]
    with pytest.raises(ValueError, match="cannot read iteration counts"):
        parse_iterations("1.5")
    check_grid(parse_learning_rates("1e-3:1:20"), parse_iterations("10,100,1000"))


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 0.0, float("inf")])
@pytest.mark.parametrize("batch_size", [None, 10])
def test_a_schedule_that_gives_a_nan_or_non_positive_step_is_refused(bad, batch_size):
    """A learning-rate schedule is a function of the step; one that returns NaN, 0, a negative or an infinite
    step at some t is refused with the step it failed at, instead of being used."""
    import gdlab

    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 2))
    y = X @ [1.0, 2.0]

    def schedule(t):
        return 0.05 if t < 3 else bad

    with pytest.raises(ValueError, match=r"schedule gave .* at step 3; a learning rate must be a positive finite"):
        gdlab.descend(X, y, learning_rate=schedule, max_iter=20, tol=None, batch_size=batch_size, engine="numpy")


def test_overflowing_features_are_one_error_naming_the_column_and_no_numpy_warnings():
    import gdlab

    X = np.array([[1.0, 1e308], [2.0, 3.0], [1.0, 5.0]])
    y = np.array([1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NumPy RuntimeWarning would fail here
        with pytest.raises(ValueError, match=r"column 1 of X holds values as large as 1e\+308.*rescale"):
            gdlab.descend(X, y)
        with pytest.raises(ValueError, match=r"column 1 of X"):
            gdlab.closed_form(X, y)


@pytest.mark.parametrize("missing", [pd.NA, None, np.nan])
def test_gdregressor_names_a_missing_value_in_a_dataframe_with_its_column_and_row(missing):
    import gdlab

    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": pd.Series([1.0, missing, 3.0, 4.0], dtype=object)})
    with pytest.raises(ValueError, match=r"X column 'b' holds a missing value .* at row 1: .*drop or fill"):
        gdlab.GDRegressor().fit(X, [1.0, 2.0, 3.0, 4.0])
