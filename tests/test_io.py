"""gdlab.io: every format loads the same numbers as pandas/NumPy, and every bad file gets one clear, named error."""

import numpy as np
import pandas as pd
import pytest

from gdlab.io import DataError, load_columns, load_table


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=30), "b": rng.integers(0, 9, size=30), "y": rng.normal(size=30)})


def _write(frame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".npy":
        np.save(path, frame.to_numpy(dtype=float))
    elif path.suffix == ".npz":
        np.savez(path, **{c: frame[c].to_numpy(dtype=float) for c in frame.columns})
    return path


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".npz"])
def test_named_columns_load_the_same_numbers_as_pandas(tmp_path, frame, ext):
    path = _write(frame, tmp_path / f"data{ext}")
    t = load_table(path, "y")
    assert t.feature_names == ["a", "b"] and t.target_name == "y"
    np.testing.assert_array_equal(t.X, frame[["a", "b"]].to_numpy(dtype=float))
    np.testing.assert_array_equal(t.y, frame["y"].to_numpy(dtype=float))
    t2 = load_table(path, "y", features="b")
    np.testing.assert_array_equal(t2.X[:, 0], frame["b"].to_numpy(dtype=float))


def test_npy_columns_are_named_by_index_and_negative_indices_count_from_the_end(tmp_path, frame):
    path = _write(frame, tmp_path / "data.npy")
    t = load_table(path, "-1")
    assert t.target_name == "2" and t.feature_names == ["0", "1"]
    np.testing.assert_array_equal(t.y, frame["y"].to_numpy())


def test_npz_with_X_and_y_arrays(tmp_path, frame):
    path = tmp_path / "xy.npz"
    np.savez(path, X=frame[["a", "b"]].to_numpy(dtype=float), y=frame["y"].to_numpy())
    t = load_table(path, "y")
    assert t.feature_names == ["0", "1"]
    np.testing.assert_array_equal(t.X, frame[["a", "b"]].to_numpy(dtype=float))


def test_load_columns_keeps_the_requested_order(tmp_path, frame):
    path = _write(frame, tmp_path / "data.csv")
    X, names = load_columns(path, ["y", "a"])
    assert names == ["y", "a"]
    np.testing.assert_array_equal(X, frame[["y", "a"]].to_numpy(dtype=float))


def _text(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


BAD = [
    # (file name, content or None for "do not create", target, substrings the message must hold)
    ("missing.csv", None, "y", ["missing.csv", "no such file"]),
    ("empty.csv", "", "y", ["empty"]),
    ("header.csv", "a,b,y\n", "y", ["header", "no rows"]),
    ("short.csv", "a,b,y\n1,2,3\n4,5\n", "y", ["line 3", "2 fields", "header has 3", "ragged"]),
    ("long.csv", "a,b,y\n1,2,3\n4,5,6,7\n", "y", ["line 3", "4 fields", "ragged"]),
    ("text.csv", "a,b,y\n1,2,3\n4,paris,6\n", "y", ["'b'", "not numeric", "row 1", "'paris'"]),
    ("nan.csv", "a,b,y\n1,2,3\n4,,6\n", "y", ["'b'", "NaN", "row 1", "line 3"]),
    ("inf.csv", "a,b,y\n1,2,3\n4,5,inf\n", "y", ["'y'", "inf", "row 1"]),
    ("neginf.csv", "a,b,y\n1,-inf,3\n", "y", ["'b'", "-inf", "row 0"]),
    ("unknown.csv", "a,b,y\n1,2,3\n", "price", ["'price'", "not found", "a, b, y"]),
    ("bad.parquet", "this is not parquet", "y", ["bad.parquet", "Parquet"]),
    ("bad.npy", "not numpy", "y", ["bad.npy", ".npy"]),
    ("bad.npz", "not a zip", "y", ["bad.npz", ".npz"]),
    ("data.xlsx", "whatever", "y", ["unknown file type", ".xlsx"]),
]


@pytest.mark.parametrize("name,content,target,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_files_get_one_clear_error_naming_the_fault(tmp_path, name, content, target, expected):
    path = tmp_path / name if content is None else _text(tmp_path, name, content)
    with pytest.raises(DataError) as info:
        load_table(path, target)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, (part, message)


def test_binary_garbage_named_csv_is_reported_as_not_text(tmp_path):
    p = tmp_path / "garbage.csv"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match="not a text file|not UTF-8"):
        load_table(p, "y")


def test_target_listed_as_a_feature_is_refused(tmp_path, frame):
    path = _write(frame, tmp_path / "data.csv")
    with pytest.raises(DataError, match="both the target and a feature"):
        load_table(path, "y", ["a", "y"])


def test_a_folder_is_not_a_file(tmp_path):
    d = tmp_path / "parts.csv"
    d.mkdir()
    with pytest.raises(DataError, match="is a folder"):
        load_table(d, "y")


def test_nan_in_a_parquet_file_names_row_and_column(tmp_path):
    df = pd.DataFrame({"a": [1.0, 2.0, np.nan], "y": [1.0, 2.0, 3.0]})
    p = tmp_path / "nan.parquet"
    df.to_parquet(p)
    with pytest.raises(DataError, match=r"column 'a' holds a missing value \(NaN\) at row 2"):
        load_table(p, "y")
