"""``python -m adareg``: the command line of :mod:`adareg.cli` (the ``adareg`` script)."""

import sys

from .cli import main

if __name__ == "__main__":  # not when imported, e.g. by the docs' module walk
    sys.exit(main())
