"""``python -m gdlab``: the gdlab command line."""

from gdlab.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
