"""The explorer: gradient descent you can play with, in the browser (``gdlab explore``).

A local web page (Starlette on uvicorn, plotly.js served from the installed plotly package) whose every number
comes from gdlab's core: :func:`gdlab.descend` on cached one-pass statistics, the curvature and the closed form.

    from gdlab.explorer import serve
    serve()                                    # the workshop's data sets, on http://127.0.0.1:8765/
    serve("houses.csv", target="price")        # your own table
"""

from __future__ import annotations

from gdlab.explorer.server import create_app, running, serve

__all__ = ["create_app", "serve", "running"]
