"""adareg_train: training of adareg's learned regularizers in PyTorch.

Installed with ``pip install adareg[train]`` (install ``torch==2.13.0`` first for the
CPU build).  It depends on :mod:`adareg` (never the reverse):

* :mod:`adareg_train.blocks` — torch mirrors of the filter bank, splines, profiles of
  sigma and the mask CNN;
* :mod:`adareg_train.families` — the ``crr``, ``wcrr``, ``sa-b`` and ``sa-cnn`` denoisers,
  trained through their fixed points (implicit differentiation for the ridges, the
  phantom gradient of a few fixed-point map steps for the adaptive families);
* :mod:`adareg_train.data` — noisy patch batches from a folder of images;
* :mod:`adareg_train.train` — the training loop, checkpoints and the export to adareg's
  parameter files.

Command line: ``python -m adareg_train train --family sa-cnn --data ../shared/data/bsd400
--out runs/sa-cnn`` (``--help`` lists the options).
"""

import importlib

try:  # every module of the subpackage builds on it
    importlib.import_module("torch")
except ImportError as err:
    raise ImportError(f"adareg_train needs PyTorch, which could not be imported ({err}): pip install 'adareg[train]' "
                      "(for a CPU-only build, install torch first from its CPU index, e.g. "
                      "pip install torch --index-url https://download.pytorch.org/whl/cpu)") from None
