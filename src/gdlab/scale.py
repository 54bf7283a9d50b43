"""Data larger than memory: one call turns files or Dask collections into a source for :func:`gdlab.descend`.

>>> from gdlab.scale import open_source, closed_form, descend
>>> src = open_source("data/", target="price")             # doctest: +SKIP
>>> closed_form(src)                                       # the Normal Equation, from one pass   # doctest: +SKIP
>>> descend(src, max_iter=500)                             # full-batch GD, O(d^2) per iteration  # doctest: +SKIP

* a path (a .parquet/.csv file or a folder of them) is streamed from disk in row batches
  (:class:`~gdlab.sources.stream.StreamSource`), or, with ``scheduler``, read by the workers of a Dask cluster;
* a dask array or dataframe is persisted once on its cluster (:class:`~gdlab.sources.dask.DaskSource`).

For the squared error both sources make one pass for the statistics; the closed form and every full-batch
iteration then cost O(d^2). Other losses make a pass (a round of Dask tasks) per evaluation.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from gdlab.losses import Loss
from gdlab.result import Result

__all__ = ["open_source", "is_scalable", "closed_form", "descend", "is_path"]


def is_path(data: Any) -> bool:
    """True for a str or os.PathLike (a file or folder to stream)."""
    return isinstance(data, (str, os.PathLike))


def is_scalable(data: Any) -> bool:
    """True when :func:`open_source` takes ``data``: a path, or a dask array/dataframe (arrays in memory are not:
    give those to :func:`gdlab.descend` directly)."""
    if is_path(data):
        return True
    from gdlab.sources.dask import is_dask_collection

    return is_dask_collection(data)


def open_source(data: Any, target: Any = None, features: Sequence[str] | None = None, fit_intercept: bool = True,
                scheduler: Any = None, batch_rows: int = 65536, loss: str | Loss = "squared_error",
                progress: Callable[[int, int | None], Any] | None = None, *, epsilon: float = 0.1) -> Any:
    """A source of loss and gradient for data that need not fit in memory.

    Parameters
    ----------
    data : a path (str or PathLike) to a .parquet/.csv file or a folder of them; or a dask dataframe; or a dask
        array X (n_samples, n_features).
    target : for files and dataframes, the name of the target column (or a list of names: several outputs).
        For a dask array, the target as a dask/NumPy array with one row per row of X, or the int index of the
        target column of X.
    features : the feature columns (files, dataframes) or their names (arrays); None: every other column.
    fit_intercept : fit the intercept.
    scheduler : None (files: stream them here; dask data: the current client, else dask's default scheduler),
        a ``distributed.Client``, or a scheduler address "tcp://host:8786". With a path, a scheduler makes the
        cluster's workers read the files (they must see the same path).
    batch_rows : rows per batch when streaming files (memory holds a few batches).
    loss, epsilon : the loss the source computes; pass the same one to descend (``loss=source.loss``).
    progress : a callback ``progress(rows_done, rows_total)`` called after each batch of each pass over files
        (``rows_total`` is None while a CSV's row count is unknown); e.g. to draw a bar with rows per second.

    Returns
    -------
    StreamSource or DaskSource, with ``name``, ``n_samples``, ``n_features``, ``n_outputs``, ``feature_names``,
    ``target_names``, ``gram_stats()``, ``value_and_grad(W, b)`` (and ``iter_batches`` for files).

    Raises
    ------
    ValueError (a :class:`~gdlab.sources.stream.StreamError`, naming the file, for file faults) when the data
    cannot be used: no target, a missing or non-numeric column, a corrupt or truncated file, NaN/inf/null values.
    """
    if is_path(data):
        if scheduler is None:
            from gdlab.sources.stream import StreamSource

            return StreamSource(data, target, features, fit_intercept=fit_intercept, batch_rows=batch_rows,
                                loss=loss, epsilon=epsilon, progress=progress)
        return _files_on_cluster(data, target, features, fit_intercept, scheduler, loss, epsilon)
    from gdlab.sources.dask import DaskSource, is_dask_collection

    if is_dask_collection(data):
        if progress is not None:
            warnings.warn("progress is reported for streamed files only; a Dask fit shows its progress on the "
                          "cluster's dashboard.", UserWarning, stacklevel=2)
        return DaskSource.from_data(data, target, features, fit_intercept=fit_intercept, loss=loss, epsilon=epsilon,
                                    scheduler=scheduler)
    raise ValueError(
        f"open_source takes a path (.parquet/.csv file or folder) or a dask array/dataframe, got "
        f"{type(data).__name__}. Arrays in memory need no source: call gdlab.descend(X, y) or gdlab.closed_form(X, y)."
    )


def _files_on_cluster(path: Any, target: Any, features: Sequence[str] | None, fit_intercept: bool, scheduler: Any,
                      loss: str | Loss, epsilon: float) -> Any:
    """Files read by a Dask cluster's workers: the stream source checks every file first (here, from footers and
    headers), so a faulty file is named before any work is sent out; the workers' readers name files too."""
    from gdlab.sources.dask import DaskSource
    from gdlab.sources.stream import StreamSource

    checked = StreamSource(path, target, features, fit_intercept=fit_intercept, loss=loss, epsilon=epsilon)
    return DaskSource.from_files(checked, scheduler=scheduler)


def closed_form(source: Any, l2: float = 0.0) -> Result:
    """The exact least-squares (ridge when ``l2`` > 0) fit from a source's one-pass statistics."""
    from gdlab.closed_form import closed_form_from_stats

    return closed_form_from_stats(source.gram_stats(), fit_intercept=source.fit_intercept, l2=l2,
                                  single_output=getattr(source, "single_output", True), source=source.name)


def descend(source: Any, **descend_params: Any) -> Result:
    """:func:`gdlab.descend` on a source, with the loss the source computes (``loss=source.loss``).

    A ``loss``/``epsilon`` given here must be the source's own: a source opened for one loss and descended with
    another would mix two objectives (the curvature and the step of one, the values of the other).
    """
    import gdlab
    from gdlab.losses import get_loss

    own = source.loss
    if "loss" in descend_params:
        asked = get_loss(descend_params.pop("loss"), descend_params.pop("epsilon", own.param or 0.1))
        if asked != own:
            raise ValueError(f"the source computes loss={own.name!r} ({own!r}) but loss={asked.name!r} ({asked!r}) "
                             "was asked for; open the source with the loss you want: "
                             "open_source(..., loss=..., epsilon=...).")
    descend_params.pop("epsilon", None)
    return gdlab.descend(source, None, loss=own, **descend_params)
