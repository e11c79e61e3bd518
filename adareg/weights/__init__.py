"""Shipped parameter files of the learned regularizers, one ``<name>.npz`` per model.

This package holds data only.  Load a model with ``adareg.load("<name>")`` and list
them with :func:`adareg.params.available`; the file format is described in
:mod:`adareg.params` and in this folder's README.md.
"""
