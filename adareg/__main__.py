"""``python -m adareg``: the command line of :mod:`adareg.cli` (the ``adareg`` script)."""

import sys

from .cli import main

sys.exit(main())
