r"""Starting values of ``lam`` (and a learned model's ``sigma``) for the examples' acquisitions.

The values live in ``adareg/weights/presets.json``, one entry per acquisition
(e.g. ``"ct-parallel-60-1e+04-128"``) and model.  Each entry was chosen by
:func:`adareg.tune` on a calibration image different from the examples' reported
ones; the file records that image and the command that reproduces the search.  They
are starting points for similar acquisitions, not optimal values for every image:
tune on your own calibration data where you have it.

``lam`` weighs the data term against the regularizer, so a preset holds only for data
on the scale and in the units of the examples' acquisitions:

* images with intensities in [0, 1] (a learned model's ``sigma`` is on that scale too);
* CT (``ct-...``): :class:`~adareg.operators.RayTransform` with ``pixel_size=1/N`` for
  an ``N x N`` image (line integrals of attenuation per unit of the image's width), and
  the data weights ``N / I0`` of :func:`adareg.ct.poisson_transmission` (raw photon
  counts as weights make the data term ``I0`` times stronger);
* MRI (``mri-cartesian-...``): :class:`~adareg.operators.CartesianMRI` with the centred
  orthonormal FFT and coil maps with :math:`\sum_c |S_c|^2 = 1`, k-space of an image
  in [0, 1], and noise of the standard deviation the name gives (0.01) in the real and
  the imaginary part.

Data on another scale ``c`` (scanner units: fastMRI's k-space is of order 1e-5 to
1e-3) need ``lam`` times ``c`` for TV, or rather data scaled to these units first, as
``adareg mri`` does for a fastMRI file; the learned models warn where the
reconstruction leaves [0, 1], TV does not.

The noise level is part of the acquisition too: a preset for 1e4 photons per ray
regularises a scan of 1e6 far too strongly.  :func:`preset` scales ``lam`` to the
data's photon count (CT) or k-space noise (MRI) where they are given.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from importlib import resources
from typing import Any

from . import checks

_FILE = "presets.json"
#: How many times larger or smaller than the data a preset's size or acceleration may be before
#: :func:`nearest` warns that it is a rough starting point.
FAR = 2.0


def _table() -> dict[str, Any]:
    return json.loads(resources.files("adareg.weights").joinpath(_FILE).read_text())


def acquisitions() -> list[str]:
    """The acquisitions that have presets."""
    return sorted(_table())


def _entry(acquisition: str, caller: str) -> dict[str, Any]:
    """The table's entry of ``acquisition``, or an error naming ``caller`` and the known acquisitions."""
    table = _table()
    if not isinstance(acquisition, str):  # a list is unhashable, a number never a name
        raise TypeError(f"{caller}: acquisition must be a name (str), e.g. 'ct-parallel-60-1e+04-128', "
                        f"got {type(acquisition).__name__}")
    if acquisition not in table:
        raise ValueError(f"{caller}: no presets for the acquisition {acquisition!r}; known: {', '.join(sorted(table))}")
    return table[acquisition]


def models(acquisition: str) -> list[str]:
    """The models that have presets for ``acquisition``."""
    return sorted(_entry(acquisition, "models")["models"])


def preset(acquisition: str, model: str, *, photons: float | None = None,
           noise: float | None = None) -> dict[str, float]:
    r"""``{"lam": ..., "sigma": ...}`` (``sigma`` only for learned models) of ``model`` for ``acquisition``,
    ``lam`` scaled to the data's noise level where it is given.

    The scaling keeps the balance of a maximum a posteriori estimate, whose data term is
    the negative log-likelihood: with the weights ``N / I0``, :math:`\tfrac12 \|Hx - y\|_w^2`
    is that divided by ``I0``, and an unweighted MRI data term is it times the noise
    variance.  It is a starting point; a search's best ``lam`` moves somewhat less
    (docs/cli.md, "Presets").

    Parameters
    ----------
    acquisition, model
        As named in ``adareg/weights/presets.json`` (:func:`acquisitions`, :func:`models`).
    photons
        CT only: the data's photons per ray of the unattenuated beam, ``I0``; ``lam``
        is multiplied by the acquisition's count (its name's field before the size,
        e.g. ``1e+04``) over ``photons``.
    noise
        MRI only: the standard deviation of the data's k-space noise (real and
        imaginary parts, on the presets' scale); ``lam`` is multiplied by the square of
        ``noise`` over the acquisition's (its name's field before the size, e.g. ``0.01``).

    Examples
    --------
    >>> import adareg
    >>> sorted(adareg.presets.preset("ct-parallel-60-1e+04-128", "sa-cnn"))
    ['lam', 'sigma']
    >>> tv = adareg.presets.preset("ct-parallel-60-1e+04-128", "tv")["lam"]
    >>> adareg.presets.preset("ct-parallel-60-1e+04-128", "tv", photons=1e6)["lam"] / tv
    0.01
    """
    models = _entry(acquisition, "preset")["models"]
    if not isinstance(model, str):
        raise TypeError(f"preset: model must be a name (str), got {type(model).__name__}")
    if model not in models:
        raise ValueError(f"preset: no preset of {model!r} for {acquisition!r}; known: {', '.join(sorted(models))}")
    chosen = {key: float(value) for key, value in models[model].items()}
    for name, given, modality, power in (("photons", photons, "ct-", -1), ("noise", noise, "mri-", 2)):
        if given is not None:
            given = checks.positive(given, f"preset: {name}")
            if not acquisition.startswith(modality):
                raise ValueError(f"preset: {name} applies to {modality}... acquisitions, not {acquisition!r}")
            chosen["lam"] *= (given / noise_level(acquisition)) ** power
    return chosen


def noise_level(acquisition: str) -> float:
    """The noise level an acquisition's presets were tuned at: its name's field before the size, photons per
    ray for CT (``ct-parallel-60-1e+04-128``: 1e4), the k-space noise's standard deviation for MRI
    (``mri-cartesian-8-x4-0.01-128``: 0.01)."""
    _entry(acquisition, "noise_level")
    found = re.search(r"-(\d[\d.]*(?:e[+-]\d+)?)-\d+$", acquisition)  # 1e-05 holds a dash
    if found is None:
        raise ValueError(f"noise_level: {acquisition!r} names no noise level before its size")
    return float(found.group(1))


def nearest(prefix: str, model: str, size: int, acceleration: float | None = None) -> str:
    """The acquisition named ``prefix...`` with a preset of ``model`` nearest to the one at hand.

    Nearest by ratio, in acceleration first (the ``x`` field of a Cartesian MRI name, e.g.
    ``x4``) where ``acceleration`` is given, then in image size (the name's last field).
    A preset tuned at another size or acceleration is a rougher starting point than one
    tuned at the same: one more than :data:`FAR` times away in either gets a warning.

    Raises
    ------
    ValueError
        If ``prefix`` does not name at least the modality (its first field and a
        dash, e.g. ``"ct-"``), no acquisition named ``prefix...`` has a preset of
        ``model`` (with an acceleration, if ``acceleration`` is given), or ``size``
        or ``acceleration`` is not positive.

    Examples
    --------
    >>> import adareg
    >>> adareg.presets.nearest("ct-parallel-60-", "sa-cnn", 120)
    'ct-parallel-60-1e+04-128'
    """
    # "" or "c" would match other modalities' presets, and "ct-parallel-6" the 60 angles' as the 6 angles'
    if not isinstance(prefix, str) or not prefix.endswith("-") or prefix.startswith("-"):
        raise ValueError(f"nearest: prefix must name at least the modality and end with a dash after its last "
                         f"whole field (e.g. 'ct-' or 'mri-cartesian-'), got {prefix!r}")
    if not isinstance(model, str):
        raise TypeError(f"nearest: model must be a name (str), got {type(model).__name__}")
    size = checks.count(size, "nearest: size")
    if acceleration is not None:
        acceleration = checks.positive(acceleration, "nearest: acceleration")
    table = _table()
    models = sorted({name for entry in table.values() for name in entry["models"]})
    if model not in models:
        raise ValueError(f"nearest: no preset of {model!r} for any acquisition; known models: {', '.join(models)}")
    found = sorted(a for a, entry in table.items() if a.startswith(prefix) and model in entry["models"]
                   and (acceleration is None or _rate(a) is not None))
    if not found:
        with_rate = "" if acceleration is None else " with an acceleration (an x field)"
        raise ValueError(f"nearest: no {prefix} acquisition{with_rate} has a preset of {model!r}; "
                         f"known: {', '.join(sorted(table))}")

    def gaps(acquisition: str) -> tuple[float, ...]:
        size_gap = abs(math.log(int(acquisition.rsplit("-", 1)[1]) / size))
        return (size_gap,) if acceleration is None else (abs(math.log(_rate(acquisition) / acceleration)), size_gap)

    best = min(found, key=gaps)
    if max(gaps(best)) > math.log(FAR):
        asked = f"size {size}" + ("" if acceleration is None else f", acceleration {acceleration:g}")
        warnings.warn(f"nearest: the preset of {model!r} nearest to {asked} is {best!r}, more than {FAR:g} times "
                      "away: a rough starting point; tune lam (and sigma) on data like yours (adareg.tune)",
                      stacklevel=2)
    return best


def _rate(acquisition: str) -> float | None:
    """The acceleration of an acquisition's name (its ``x`` field, e.g. ``x4``), ``None`` where it has none."""
    rates = [field[1:] for field in acquisition.split("-") if field.startswith("x")]
    return float(rates[0]) if rates else None


def source(acquisition: str) -> dict[str, str]:
    """Where the presets of ``acquisition`` came from: the calibration image and the command."""
    return dict(_entry(acquisition, "source")["source"])
