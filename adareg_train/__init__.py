"""adareg_train: training of adareg's learned regularizers in PyTorch.

Installed with ``pip install adareg[train]``.  It depends on :mod:`adareg` (never
the reverse).  The training modules arrive with the learned regularizer
families; this package holds nothing else yet.
"""
