"""The training package's tests need torch (``pip install torch==2.13.0``, the CPU build)."""

import pytest

pytest.importorskip("torch", reason="adareg_train needs torch: pip install torch==2.13.0")
