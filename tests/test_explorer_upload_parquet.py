"""The explorer takes Parquet uploads as the command line reads Parquet files: the same table gives the same data set
as its CSV, page checksums are verified, and the limits are read from the footer before any column is decoded."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from starlette.testclient import TestClient  # noqa: E402

from gdlab.explorer import model  # noqa: E402
from gdlab.explorer.model import Limits  # noqa: E402
from gdlab.explorer.server import PARQUET_TYPE, create_app  # noqa: E402

BASE = "http://127.0.0.1"


def parquet_bytes(frame: pd.DataFrame, checksums: bool = True) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf, write_page_checksum=checksums)
    return buf.getvalue()


def post(client, data: bytes, media: str = PARQUET_TYPE, **params):
    return client.post("/api/upload", params=params, content=data, headers={"content-type": media})


@pytest.fixture
def frame():
    rng = np.random.default_rng(11)
    X = rng.normal(loc=[3.0, -20.0], scale=[1.0, 5.0], size=(200, 2))
    y = 0.5 + X @ [1.5, -0.25] + 0.2 * rng.normal(size=200)
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "price": y})


def test_a_parquet_upload_is_the_same_data_set_as_its_csv(frame):
    client = TestClient(create_app(), base_url=BASE)
    r = post(client, parquet_bytes(frame), name="mine.parquet", target="price")
    assert r.status_code == 200, r.text
    info = r.json()["dataset"]
    assert info["n_rows"] == 200 and info["feature_names"] == ["a", "b"] and info["target_name"] == "price"
    X_b = np.c_[np.ones(200), frame[["a", "b"]].to_numpy()]
    w_star = np.linalg.lstsq(X_b, frame["price"].to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(info["optimum"]["params"], w_star, rtol=1e-9)
    lam = np.linalg.eigvalsh(2 / 200 * X_b.T @ X_b)
    assert info["curvature"]["L"] == pytest.approx(lam[-1], rel=1e-9)
    csv = post(client, frame.to_csv(index=False).encode(), "text/csv", name="mine.csv", target="price").json()
    np.testing.assert_allclose(csv["dataset"]["optimum"]["params"], info["optimum"]["params"], rtol=1e-12)
    # it can be descended on like any other data set
    body = client.get(f"/api/descend?dataset={info['id']}&iterations=5").json()
    assert len(body["runs"][0]["params"]) == 6


def test_a_parquet_page_whose_bytes_changed_is_refused(frame):
    client = TestClient(create_app(), base_url=BASE)
    data = bytearray(parquet_bytes(frame))
    meta = pq.read_metadata(pa.BufferReader(bytes(data)))
    col = meta.row_group(0).column(0)
    at = col.data_page_offset + (col.total_compressed_size // 2)  # inside the first column's data page
    data[at] ^= 0xFF
    r = post(client, bytes(data), name="flipped.parquet")
    assert r.status_code == 400
    assert "checksum" in r.json()["error"] or "could not be read as Parquet" in r.json()["error"]


def test_bytes_that_are_not_parquet_get_one_clear_error():
    client = TestClient(create_app(), base_url=BASE)
    r = post(client, b"x,y\n1,2\n3,4\n", name="data.parquet")
    assert r.status_code == 400 and "is not a Parquet file" in r.json()["error"]
    assert r.json()["parameter"] == "file"
    r = post(client, b"x,y\n1,2\n", "application/octet-stream")
    assert r.status_code == 415 and PARQUET_TYPE in r.json()["error"] and "text/csv" in r.json()["error"]


def test_parquet_limits_come_from_the_footer_before_any_column_is_decoded(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the columns were decoded before the limits were checked")

    monkeypatch.setattr(model, "read_parquet_bytes", never)
    import gdlab.explorer.server as server

    monkeypatch.setattr(server, "read_parquet_bytes", never)
    client = TestClient(create_app(limits=Limits(max_columns=6, max_cells=60)), base_url=BASE)
    wide = pd.DataFrame({f"c{j}": np.arange(3.0) for j in range(7)})
    r = post(client, parquet_bytes(wide), name="wide.parquet")
    assert r.status_code == 400 and "7 columns; the explorer reads at most 6" in r.json()["error"]
    tall = pd.DataFrame({"a": np.arange(25.0), "b": np.arange(25.0), "c": np.arange(25.0)})
    r = post(client, parquet_bytes(tall), name="tall.parquet")
    assert r.status_code == 413 and "25 rows x 3 columns" in r.json()["error"]


def test_the_note_names_the_pages_box_not_a_python_argument(frame):
    client = TestClient(create_app(), base_url=BASE)
    info = post(client, parquet_bytes(frame), name="mine.parquet").json()["dataset"]
    assert "target=" not in info["note"] and "Target column box" in info["note"]
