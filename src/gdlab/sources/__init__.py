"""Sources of loss and gradient. One small protocol, several homes.

A source has ``name``, ``n_samples``, ``n_features``, ``n_outputs``, ``fit_intercept`` and

* ``value_and_grad(W, b) -> (loss, grad_W, grad_b)`` for W (d, k), b (k,): the mean data loss (summed over outputs)
  and its gradient;
* ``gram_stats() -> GramStats`` (optional): the one-pass statistics, for the curvature and the closed form;
* ``supports_batches`` and ``iter_batches(batch_size, rng, shuffle)`` (optional): one epoch of mini-batches, each a
  source of its own.

``memory`` and ``gram`` live here; ``stream`` (files) and ``dask`` (clusters) are imported on first use, since they
need pyarrow and dask.
"""

from gdlab.sources.gram import GramSource, GramStats
from gdlab.sources.memory import MemorySource

__all__ = ["GramSource", "GramStats", "MemorySource"]
