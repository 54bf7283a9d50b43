"""The build's one compiled part: the statistics pass (src/gdlab/_gram_pass.c), compiled at install or wheel build.

Everything else is declared in pyproject.toml. The extension is optional: without a C compiler the install still
succeeds and gdlab forms the statistics with NumPy/BLAS (or numba, when loaded) instead.
"""

import sys

from setuptools import Extension, setup

args = [] if sys.platform == "win32" else ["-O3", "-std=gnu11", "-ffp-contract=fast"]
setup(ext_modules=[Extension("gdlab._gram_pass", ["src/gdlab/_gram_pass.c"], extra_compile_args=args,
                             optional=True)])
