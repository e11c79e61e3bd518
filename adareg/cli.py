"""The ``adareg`` command line: denoise images, reconstruct CT and MRI data, run the demos, list models.

    adareg denoise IN.png --sigma 25 [--model sa-cnn|tv|NAME|PATH] [--lam LAM] [--masks M.npy] -o OUT.png
    adareg denoise VOLUME --sigma 10 [...] -o OUT_VOLUME            (NIfTI, DICOM folder, TIFF stack, 3D NPY)
    adareg ct SINO.npy --angles 180 [--geometry parallel|fan ...] [--model fbp|tv|NAME|PATH] [--preset ACQ] -o OUT.npy
    adareg ct SINOGRAMS.tif --angles 180 [...] -o VOLUME.tif        (slices x angles x detectors)
    adareg mri KSPACE.npy --mask MASK.npy [--maps MAPS.npy] [--model zero-filled|sense|tv|NAME|PATH] -o OUT.npy
    adareg mri FILE.h5 [--acceleration 4] [--slices 10:20] [--model ...] -o VOLUME.nii.gz   (fastMRI)
    adareg demo ct|mri|denoise|volume [--output FIGURE.png]
    adareg models

Iterative CT and MRI reconstructions take ``--lam`` (and ``--sigma``) or, without
them, the :mod:`adareg.presets` of an acquisition (``--preset``; by default the model's
preset for the acquisition nearest to the data: the same CT geometry and number of
angles, or for MRI the nearest acceleration, then the nearest image size).

Volumes are reconstructed slice by slice (:func:`adareg.stacks.map_slices`),
``--chunk`` slices per solve, in this process or on Dask (``--workers N`` starts a
local cluster, ``--scheduler ADDRESS`` uses a running one); the output volume is
written once, after every slice exists, keeping the input's metadata where the
formats match (:mod:`adareg.io.volumes`).

Every error is one line on standard error and a non-zero exit status (the
traceback only with ``--debug``); outputs are written atomically, so a failed
run leaves no file behind.
"""

from __future__ import annotations

import argparse
import fractions
import importlib.util
import math
import runpy
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, backend, checks, intensities, io, metrics, mri, params, presets, stacks
from .ct import fbp, transmission_weights
from .io import fastmri
from .operators import CartesianMRI, Identity, RayTransform
from .operators.ct import fitting_image_size
from .reconstruction import solve
from .regularizers import TV, AdaptiveRegularizer

#: The widest span of line integrals taken for a transmission scan's: a measured ray keeps at least a photon of the
#: I0 it started with, so its p = -log(N / I0) stays below log(I0), 11.5 for 1e5 photons (a 50 cm water path is
#: about 9.7); beyond, ``adareg ct`` names ``--data-weights uniform``.
SCAN_SPAN = 12.0

#: The largest ``--image-size`` (a 16384^2 float32 image is 1 GiB, before the solver's copies).
MAX_IMAGE_SIZE = 16384
#: The smallest image adareg ct fits to a detector row without --image-size: less means options in different units.
MIN_FITTED_SIZE = 8

#: Inputs of ``adareg mri`` read as fastMRI files.
FASTMRI_SUFFIXES = (".h5", ".hdf5")

DEMOS = {"ct": "adareg.examples.ct_recon", "mri": "adareg.examples.mri_recon", "denoise": "adareg.examples.denoise",
         "volume": "adareg.examples.volume"}
#: The extras each demo needs (pyproject.toml's optional dependencies).
DEMO_EXTRAS = {"ct": "examples,ct", "mri": "examples,mri", "denoise": "examples", "volume": "examples,io"}


class UsageError(ValueError):
    """A problem with the command line's options or files, reported as one line."""


#: Each command's own methods: what ``--model`` names besides the shipped models and parameter files.
METHODS = {"denoise": ("tv",), "ct": ("fbp", "tv"), "mri": ("zero-filled", "sense", "tv")}


def _regularizer(args: argparse.Namespace, shape: tuple[int, ...]) -> Any:
    """``--model``: ``"tv"`` gives total variation; anything else is a shipped model's name or a parameter file
    (an unknown name is named with the command's own methods, which are not shipped models)."""
    if args.model == "tv":
        return TV(shape)
    try:
        return params.load(args.model)
    except params.ParameterFileError as err:
        if err.file is not None:  # a file's own problem
            raise
        methods = ", ".join(repr(method) for method in METHODS[args.command])
        raise UsageError(f"--model {args.model!r}: the command's own methods are {methods}; {err}") from None


def _device(array: np.ndarray, device: str) -> Any:
    """``array`` on ``--device``, in this process (a volume's slices are placed where its workers run them)."""
    if device == "gpu" and not backend.gpu_available():
        raise UsageError("--device gpu: CuPy with a CUDA device is not available here; install it with "
                         "`pip install adareg[gpu]` on a machine with an NVIDIA GPU, or use --device cpu")
    return backend.to_device(array, device)


def _sigma(value: float | None, reg: Any, required: bool) -> float | None:
    """``--sigma`` (0-255 scale) as an intensity in [0, 1], checked against the model's range."""
    if value is None:
        if required:
            raise UsageError("--sigma is required with a learned model (noise level on the 0-255 scale)")
        return None
    if not (math.isfinite(value) and 0 < value <= 255):
        raise UsageError(f"--sigma must lie in (0, 255] (the noise level on the 0-255 scale), got {value:g}")
    if value < 1:
        warnings.warn(f"--sigma {value:g} is on the 0-255 scale: {value:g}/255 is below one grey level of an 8-bit "
                      f"image, so almost nothing will change (for a noise level of {value:g} on the 0-1 scale, give "
                      f"--sigma {value * 255:.3g})", stacklevel=2)
    sigma = value / 255.0
    if hasattr(reg, "check_sigma"):
        try:
            reg.check_sigma(sigma)
        except ValueError as err:
            raise UsageError(f"--sigma {value:g}: {err}") from None
    return sigma


def _refuse(args: argparse.Namespace, options: tuple[str, ...], reason: str) -> None:
    """A usage error for any of ``options`` (attribute names) given where they do not apply."""
    for name in options:
        if getattr(args, name, None) is not None:
            raise UsageError(f"--{name.replace('_', '-')} {reason}")


def _single_image(args: argparse.Namespace) -> None:
    """Refuse the volume options for one image (they would be ignored)."""
    _refuse(args, ("chunk", "workers", "scheduler"),
            "applies to volumes (NIfTI, DICOM, TIFF stacks, 3D .npy, fastMRI .h5)")


def _volume(args: argparse.Namespace) -> None:
    """Refuse the single-image options for a volume (they would be ignored)."""
    _refuse(args, ("masks",), "is written for one image; reconstruct the slice alone to get its masks")


#: The models of ``ct`` and ``mri`` without a regularizer: the options they would ignore, and why.
DIRECT_MODELS = {
    "fbp": (("masks", "lam", "sigma", "preset", "photons", "data_weights"),
            "the filtered back-projection has no regularizer and no data term"),
    "zero-filled": (("masks", "lam", "sigma", "preset", "noise", "space"),
                    "the zero-filled reconstruction has no regularizer (and is complex)"),
    "sense": (("masks", "sigma", "preset", "noise", "space"),
              "SENSE's only weight is --lam (Tikhonov, default 0.01; its image is complex)"),
}


def _model_options(args: argparse.Namespace) -> None:
    """Refuse, before any work, the weight options of ``ct`` and ``mri`` that ``--model`` (or ``--lam``) ignores."""
    if args.model in DIRECT_MODELS:
        options, why = DIRECT_MODELS[args.model]
        _refuse(args, options, f"does not apply to --model {args.model}: {why}")
    if args.model == "tv":
        _refuse(args, ("sigma",), "does not apply to --model tv: only the learned models take a noise level")
    if args.lam is not None:
        _refuse(args, ("preset",), "does not apply with --lam: a preset gives lam (and sigma); give one or the other")
        _refuse(args, ("photons", "noise"), "scales a preset's lam: it does not apply with --lam")


def _check_outputs(args: argparse.Namespace, suffixes: tuple[str, ...]) -> None:
    """Refuse, before any work, an output that cannot be written, that is one of the inputs or that is given twice."""
    outputs = [args.output] + ([args.masks] if getattr(args, "masks", None) else [])
    inputs = [args.input] + [getattr(args, name) for name in ("mask", "maps") if getattr(args, name, None)]
    for output, allowed in zip(outputs, (suffixes, io.ARRAY_SUFFIXES)):
        io.check_image_output(output, allowed)
        _refuse_overwriting(output, inputs)
    if len(outputs) == 2 and (io.same_file(*outputs) or Path(outputs[0]).resolve() == Path(outputs[1]).resolve()):
        raise UsageError(f"--masks {args.masks} and --output {args.output} are the same file; write the masks to "
                         "another file")


def _refuse_overwriting(output: str, inputs: list[str]) -> None:
    """A usage error when ``output`` is one of ``inputs`` (the same file, links followed)."""
    for given in inputs:
        if io.same_file(given, output):
            raise UsageError(f"{output}: the output is the input {given}; write the result to another file")


def _denoise(args: argparse.Namespace) -> None:
    if io.is_volume(args.input):
        _denoise_volume(args)
        return
    _single_image(args)
    _check_outputs(args, io.IMAGE_SUFFIXES + io.ARRAY_SUFFIXES)
    image, bits = io.read_image(args.input)
    if _stored_dtype(args.input) == np.float32:
        image = image.astype(np.float32)  # solved and written at the input's precision, as solve keeps it
    reg = _regularizer(args, image.shape)
    _check_masks(args, reg)
    sigma, lam = _denoise_weights(args, reg)
    _warn_cut_off(image, sigma, args.input)
    learned = args.model != "tv"

    y = _device(image, args.device)
    result = solve(Identity(image.shape), y, reg, lam=lam, sigma=sigma if learned else None, bounds=(0.0, 1.0),
                   progress=not args.quiet)
    with io.written_together():  # the image and its masks, or neither
        io.write_image(args.output, backend.to_numpy(result.x), bits)
        _write_masks(args, reg, result.x, sigma)
    _report(args, result)


def _stored_dtype(path: str) -> np.dtype | None:
    """The dtype of an ``.npy`` file (its header only, already checked by the reader), ``None`` for other files."""
    if not path.lower().endswith(io.ARRAY_SUFFIXES):
        return None
    return np.load(path, mmap_mode="r", allow_pickle=False).dtype.newbyteorder("=")


def _warn_cut_off(image: np.ndarray, sigma: float | None, path: str) -> None:
    """Warn where the output's box [0, 1] will cut off values that noise of ``sigma`` does not explain.

    A [0, 1] image with noise of ``sigma`` has a pixel 4 sigma beyond [0, 1] with probability 3e-5, so more
    than :data:`~adareg.intensities.OUTSIDE_SHARE` of them there is another intensity scale (the reader has warned
    already where :func:`adareg.intensities.far_outside` finds one).
    """
    if sigma is None or intensities.far_outside(image):
        return
    margin = 4 * sigma
    beyond = int(np.count_nonzero((image < -margin) | (image > 1 + margin)))
    if beyond > intensities.OUTSIDE_SHARE * image.size:
        warnings.warn(f"{path}: {beyond} of {image.size} values lie more than 4 sigma ({margin:.3g}) beyond [0, 1], "
                      "where the output is kept, so they are cut off: rescale the image to [0, 1] first",
                      io.IntensityWarning, stacklevel=2)


def _denoise_weights(args: argparse.Namespace, reg: Any) -> tuple[float | None, float | None]:
    """``--sigma`` on the [0, 1] scale and ``--lam`` (TV's default 0.8 sigma; a learned model's, its trained value).

    TV takes no noise level: ``--sigma`` only sets its default ``--lam``, so with ``--lam`` it is refused.
    """
    if args.model != "tv":
        return _sigma(args.sigma, reg, required=True), args.lam
    if args.lam is not None:
        _refuse(args, ("sigma",), "does not apply to --model tv with --lam: TV takes no noise level, --sigma only "
                "sets its default --lam (0.8 sigma)")
        return None, args.lam
    if args.sigma is None:
        raise UsageError("--sigma is required with --model tv (noise level on the 0-255 scale; the default --lam is "
                         "0.8 sigma), or give --lam")
    sigma = _sigma(args.sigma, reg, required=True)
    return sigma, 0.8 * sigma  # the rule of examples/denoise.py, chosen on other images


def _denoise_volume(args: argparse.Namespace) -> None:
    """Every slice of a volume, in the units of its :func:`~adareg.io.intensity_window`."""
    volume = _read_volume(args, derived=True)
    reg = _regularizer(args, volume.data.shape[1:])
    sigma, lam = _denoise_weights(args, reg)
    low, high = io.intensity_window(volume)
    found = io.images.first_slice_outside(volume.data, low, high)
    if found:
        number, outside = found
        raise UsageError(f"{args.input}: slice {number}: {outside} of {volume.data[number].size} values lie more than "
                         f"{0.5 * (high - low):g} beyond [{low:g}, {high:g}], the intensities the output is kept "
                         "in: rescale the volume to [0, 1] first (e.g. divide 8-bit values by 255)")
    if (low, high) == (0.0, 1.0):  # as for one image (a window of the volume's own range cuts nothing off)
        _warn_cut_off(volume.data, sigma, args.input)
    task = stacks.Denoise(args.model, sigma, lam, low, high, args.device)
    result = _map_slices(args, task, volume.data)
    if args.model == "tv":  # it takes no noise level: its weight (--lam, or 0.8 sigma)
        weight = f"lam {lam:g}"
    else:
        weight = f"sigma {args.sigma:g}/255" + ("" if args.lam is None else f", lam {args.lam:g}")
    io.write_volume(args.output, result, volume, f"adareg {args.model} denoising, {weight} of [{low:g}, {high:g}]")


def _read_volume(args: argparse.Namespace, derived: bool, as_stored: bool = False) -> io.Volume:
    """The input volume, the output checked first (a DICOM output, only for a ``derived`` image, right after).

    ``as_stored`` reads values that are not intensities (sinograms) unscaled (:func:`adareg.io.read_volume`).
    """
    _volume(args)
    if not Path(args.input).exists():  # said first: a mistyped input made a suffix-less name, "not a volume output"
        raise FileNotFoundError(f"{args.input}: no such file or folder")
    try:
        after = derived and io.volumes.volume_format(args.output) == "dicom"
    except ValueError:  # no volume output at all: named as such by the check below
        after = False
    if not after:
        _check_volume_output(args, None)
    volume = io.read_volume(args.input, as_stored=as_stored)
    if after:
        _check_volume_output(args, volume)
    return volume


def _check_volume_output(args: argparse.Namespace, like: io.Volume | None) -> None:
    """A volume output that can be written (a DICOM folder needs a DICOM input) and is not the input."""
    try:
        io.check_volume_output(args.output, like)
    except ValueError as err:
        try:
            io.volumes.volume_format(args.output)
        except ValueError:  # no volume output at all (e.g. an image's suffix): why one is asked for
            raise UsageError(f"{args.input} is read as a volume (slices), so the output is one: {err}") from None
        raise
    _refuse_overwriting(args.output, [args.input])


def _map_slices(args: argparse.Namespace, task: stacks.SliceTask, data: np.ndarray,
                numbers: Sequence[int] | None = None) -> np.ndarray:
    chunk = {} if args.chunk is None else {"chunk": args.chunk}  # None: map_slices' default
    return stacks.map_slices(task, data, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet,
                             numbers=numbers, **chunk)


def _check_masks(args: argparse.Namespace, reg: Any) -> None:
    """Refuse ``--masks`` before any work for a model that has none."""
    if getattr(args, "masks", None) is not None and not isinstance(reg, AdaptiveRegularizer):
        raise UsageError(f"--masks: the model {args.model!r} has no masks (only the spatially adaptive models have)")


def _write_masks(args: argparse.Namespace, reg: Any, x: Any, sigma: float | None) -> None:
    """``--masks FILE``: the weights Lambda(x, sigma) of an adaptive model at its reconstruction, (C, H, W)."""
    if args.masks is not None:
        io.write_array(args.masks, backend.to_numpy(reg.weights(x, sigma)))


#: The range of an image's largest values (99.5th percentile of magnitudes) taken as the [0, 1] scale of the
#: presets and the learned models; beyond it by this factor, :func:`_warn_on_scale` warns.
SCALE_FACTOR = 20.0


def _warn_on_scale(args: argparse.Namespace, image: Any, what: str) -> bool:
    """An :class:`~adareg.io.IntensityWarning` where ``image``, a linear reconstruction (FBP, zero-filled), lies
    far from the [0, 1] scale that the presets' weights and a learned model's noise level refer to; whether it
    warned.

    Only where those are used: a learned model, or a TV weight from a preset; ``tv`` with ``--lam`` is the
    caller's choice at the data's own scale.
    """
    if args.model == "tv" and args.lam is not None:
        return False
    top = float(np.percentile(np.abs(backend.to_numpy(image)), 99.5))
    warned = 0 < top < 1 / SCALE_FACTOR or top > SCALE_FACTOR
    if warned:
        warnings.warn(f"{args.input}: its {what} reaches {top:.3g} (99.5th percentile of magnitudes), but the presets "
                      f"and learned models are for images in [0, 1], where --sigma and the presets' --lam are "
                      f"measured: rescale the data so that the image lies in [0, 1], or tune --lam on data like "
                      "yours", io.IntensityWarning, stacklevel=2)
    return warned


def _solve_on_scale(args: argparse.Namespace, linear: Any, what: str, *problem: Any, **options: Any) -> Any:
    """:func:`adareg.solve` of ``problem``, after :func:`_warn_on_scale` on ``linear``, the linear reconstruction
    named ``what``: where that warns, solve's own word on the reconstruction's scale would repeat it."""
    with warnings.catch_warnings():
        if _warn_on_scale(args, linear, what):
            warnings.filterwarnings("ignore", message="solve: the reconstruction")
        return solve(*problem, progress=not args.quiet, **options)


def _lam_and_sigma(args: argparse.Namespace, reg: Any, prefix: str, size: int,
                   acceleration: Callable[[], float] | None = None, fitted: Callable[[], int] | None = None
                   ) -> tuple[float, float | None]:
    """``--lam`` and ``--sigma``, or the preset of ``--preset`` (else the model's acquisition ``prefix...`` nearest to
    the data, :func:`adareg.presets.nearest`; ``acceleration()`` is the data's, for MRI).

    Presets are for the scans their names describe: an explicit ``--preset`` must name one
    (``prefix...``), and a CT preset assumes that the field of view the detector row covers
    spans one unit: ``--pixel-size`` times ``fitted()``, the size of the largest image the
    row covers, is 1 (whatever ``--image-size`` crops of that field).
    """
    if args.lam is not None:
        return args.lam, _sigma(args.sigma, reg, required=args.model != "tv")
    if args.preset is not None and not args.preset.startswith(prefix):
        raise UsageError(f"--preset {args.preset} is not for this scan, whose presets are named {prefix}... "
                         f"(adareg.presets has {', '.join(presets.acquisitions())}); give --lam to choose the weights")
    with warnings.catch_warnings(record=True) as notes:  # shown below, unless the units refuse the preset
        warnings.simplefilter("always")
        if args.preset is not None:
            acquisition = args.preset
        else:
            try:
                acquisition = presets.nearest(prefix, args.model, size,
                                              None if acceleration is None else acceleration())
            except ValueError:
                shipped = args.model == "tv" or args.model in params.available()
                advice = ("give --preset or --lam" if shipped else "presets are for the shipped models and tv: a "
                          "parameter file needs --lam (and --sigma)")
                raise UsageError(f"--lam is required: no {prefix} preset of {args.model} (adareg.presets has "
                                 f"{', '.join(presets.acquisitions())}; {advice})") from None
    if fitted is not None and not math.isclose(args.pixel_size * (n := fitted()), 1.0, rel_tol=1e-6):
        raise UsageError(f"the presets were tuned with the field of view that the detector row covers spanning one "
                         f"unit (--pixel-size 1/{n} = {1 / n:.6g} here), but --pixel-size {args.pixel_size:g} makes "
                         f"it {args.pixel_size * n:g} units, so every line integral of an image is that many times "
                         "larger: give --pixel-size 1/N if the sinogram is in those units, or --lam")
    for note in notes:
        warnings.warn(note.message, note.category, stacklevel=2)
    level = {"photons": getattr(args, "photons", None), "noise": getattr(args, "noise", None)}
    try:
        chosen = presets.preset(acquisition, args.model, **level)
    except ValueError as err:  # an unknown --preset, or none of it for this model (a parameter file)
        if args.preset is None:
            raise
        raise UsageError(f"--preset {args.preset}: {err}") from None
    if args.sigma is None:
        sigma, source = chosen.get("sigma"), ""
    else:
        sigma, source = _sigma(args.sigma, reg, required=True), " (--sigma)"
    if not args.quiet:
        option, unit = ("photons", " photons per ray") if args.command == "ct" else ("noise", " k-space noise")
        tuned = f"{presets.noise_level(acquisition):g}{unit}"
        scaled = (f", scaled from its {tuned} to --{option} {level[option]:g}" if level[option] is not None
                  else f" (tuned for {tuned}: give --{option} for data of another)")
        print(f"adareg {args.command}: lam {chosen['lam']:.3g} from the preset {acquisition}{scaled}"
              + ("" if sigma is None else f", sigma {255 * sigma:.3g}/255{source}"), file=sys.stderr)
    return chosen["lam"], sigma


def _ct_geometry(args: argparse.Namespace, detectors: int) -> tuple[int, dict[str, Any]]:
    """The image size and the :class:`~adareg.operators.RayTransform` keywords of the options."""
    geometry: dict[str, Any] = {"geometry": args.geometry, "pixel_size": args.pixel_size,
                                "detector_spacing": args.detector_spacing}
    if args.geometry == "fan":
        if args.source_distance is None or args.detector_distance is None:
            raise UsageError("--geometry fan needs --source-distance and --detector-distance")
        geometry.update(source_distance=args.source_distance, detector_distance=args.detector_distance)
    else:
        _refuse(args, ("source_distance", "detector_distance"), "applies to --geometry fan only (a parallel beam has "
                "no source)")
    if args.image_size is None:  # the largest image the detector row covers, magnified in a fan beam
        size = fitting_image_size(detectors, **geometry)
        if size < MIN_FITTED_SIZE:  # options in different units, e.g. the detector spacing in mm, the pixel in cm
            spacing = args.pixel_size if args.detector_spacing is None else args.detector_spacing
            raise UsageError(f"{detectors} detectors of spacing {spacing:g} cover only a {size} x {size} "
                             f"image of --pixel-size {args.pixel_size:g}: give --pixel-size, --detector-spacing"
                             + (" and the fan's distances" if args.geometry == "fan" else "")
                             + " in one unit, or --image-size")
    else:
        size = args.image_size
    if not 1 <= size <= MAX_IMAGE_SIZE:
        raise UsageError(f"--image-size must lie in [1, {MAX_IMAGE_SIZE}], got {size}")
    return size, {**geometry, "detector_count": detectors}


def _fitted_size(geometry: dict[str, Any]) -> int:
    """The size of the largest image that the detector row of ``geometry`` (:func:`_ct_geometry`'s) covers."""
    return fitting_image_size(geometry["detector_count"],
                              **{key: value for key, value in geometry.items() if key != "detector_count"})


def _check_sinograms(args: argparse.Namespace, sinograms: np.ndarray) -> None:
    """Real sinograms of ``--angles`` rows: (angles, detectors), or (slices, angles, detectors)."""
    if sinograms.dtype.kind not in "fiu" or sinograms.ndim not in (2, 3):
        raise UsageError(f"{args.input}: expected real sinograms, (angles, detectors) or (slices, angles, detectors), "
                         f"got shape {sinograms.shape} and dtype {sinograms.dtype}")
    if sinograms.shape[-2] != args.angles:
        which = "each sinogram has" if sinograms.ndim == 3 else "the sinogram has"
        raise UsageError(f"{args.input}: {which} {sinograms.shape[-2]} rows but --angles is {args.angles}")


def _warn_default_weights(args: argparse.Namespace, sinograms: np.ndarray) -> None:
    """Name ``--data-weights uniform`` where the line integrals span more than :data:`SCAN_SPAN`: line integrals in
    pixel units, for one, are no transmission scan's, and their default weights e^-p would span e^span."""
    if args.data_weights is None and sinograms.size:
        spread = float(np.max(sinograms)) - float(np.min(sinograms))  # of the line integrals: e^spread of e^-p
        if spread > SCAN_SPAN:
            warnings.warn(f"{args.input}: the line integrals span {spread:.3g}, so the default data weights e^-p "
                          f"(--data-weights transmission) span a factor {math.exp(min(spread, 700)):.3g}: if these "
                          "are not a transmission scan's log-transformed data (line integrals in pixel units, for "
                          "one: see --pixel-size), pass --data-weights uniform", stacklevel=2)


def _ct(args: argparse.Namespace) -> None:
    _model_options(args)
    if io.is_volume(args.input) or args.input.lower().endswith(io.volumes.SUFFIXES["tiff"]):
        _ct_volume(args)  # a TIFF of sinograms is a stack, of one page or more
        return
    _single_image(args)
    _check_outputs(args, io.ARRAY_SUFFIXES)
    sinogram = io.read_array(args.input)
    _check_sinograms(args, sinogram)
    if sinogram.ndim != 2:
        raise UsageError(f"{args.input}: expected a 2D sinogram (angles, detectors), got shape {sinogram.shape}")
    size, geometry = _ct_geometry(args, sinogram.shape[1])
    H = RayTransform((size, size), args.angles, **geometry)
    y = _device(sinogram.astype(np.float32), args.device)
    if args.model == "fbp":
        x = fbp(H, y, window=args.window)
        io.write_array(args.output, backend.to_numpy(x))
        return
    reg = _regularizer(args, (size, size))
    _check_masks(args, reg)
    lam, sigma = _lam_and_sigma(args, reg, f"ct-{args.geometry}-{args.angles}-", size,
                                fitted=lambda: _fitted_size(geometry))
    _warn_default_weights(args, sinogram)
    x0 = fbp(H, y, window=args.window)
    weights = None if args.data_weights == "uniform" else transmission_weights(y)  # transmission by default
    result = _solve_on_scale(args, x0, "FBP", H, y, reg, lam=lam, sigma=sigma, bounds=(0.0, None), x0=x0,
                             weights=weights)
    with io.written_together():  # the image and its masks, or neither
        io.write_array(args.output, backend.to_numpy(result.x))
        _write_masks(args, reg, result.x, sigma)
    _report(args, result)


def _ct_volume(args: argparse.Namespace) -> None:
    """A stack of sinograms (slices, angles, detectors), each reconstructed as one slice."""
    # line integrals, not [0, 1] intensities; a CT image keeps nothing of its sinograms' file
    sinograms = _read_volume(args, derived=False, as_stored=True).data
    _check_sinograms(args, sinograms)
    size, geometry = _ct_geometry(args, sinograms.shape[-1])
    lam = sigma = None
    if args.model != "fbp":
        reg = _regularizer(args, (size, size))
        lam, sigma = _lam_and_sigma(args, reg, f"ct-{args.geometry}-{args.angles}-", size,
                                    fitted=lambda: _fitted_size(geometry))
        _warn_default_weights(args, sinograms)
        if args.model == "tv":  # a learned model's solves say it slice by slice; TV's scale is that of its lam
            sample = np.linspace(0, len(sinograms) - 1, min(3, len(sinograms))).round().astype(int)
            H = RayTransform((size, size), args.angles, **geometry)
            _warn_on_scale(args, fbp(H, np.asarray(sinograms[sample], np.float32), window=args.window),
                           "FBP (of slices " + ", ".join(map(str, sample)) + ")")
    task = stacks.CTReconstruction(size, args.angles, geometry, args.model, lam, sigma,
                                   args.window, args.device, args.data_weights or "transmission")
    io.write_volume(args.output, _map_slices(args, task, sinograms), None,
                    f"adareg {args.model} CT reconstruction, {args.angles} {args.geometry}-beam angles")


def _mri(args: argparse.Namespace) -> None:
    _model_options(args)
    if str(args.input).lower().endswith(FASTMRI_SUFFIXES):
        _fastmri(args)
        return
    _single_image(args)
    _refuse(args, ("acceleration", "center_fraction", "seed", "slices"), "applies to fastMRI .h5 files")
    if args.mask is None:
        raise UsageError("--mask is required with .npy k-space (a fastMRI .h5 file carries its own or takes "
                         "--acceleration)")
    _check_outputs(args, io.ARRAY_SUFFIXES)
    kspace = io.read_array(args.input)
    mask = io.read_array(args.mask)
    maps = io.read_array(args.maps) if args.maps else None
    if kspace.dtype.kind != "c":
        raise UsageError(f"{args.input}: expected complex k-space, got dtype {kspace.dtype} (a real array holds an "
                         "image or magnitudes, not k-space)")
    if maps is None and kspace.ndim != 2:
        raise UsageError(f"{args.input}: k-space of shape {kspace.shape} has {kspace.ndim} axes; one coil is (H, W), "
                         "and multi-coil data (coils, H, W) need coil sensitivities: --maps MAPS.npy (e.g. from "
                         "adareg.mri.espirit_maps)")
    if maps is not None and kspace.ndim != 3:
        raise UsageError(f"{args.input}: k-space of shape {kspace.shape} has {kspace.ndim} axes, but --maps goes with "
                         "multi-coil data (coils, H, W), one k-space grid per map")
    image_shape = tuple(kspace.shape[1:]) if maps is not None else tuple(kspace.shape)
    learned = args.model not in ("zero-filled", "sense", "tv")
    if learned and args.space == "complex":
        raise UsageError(f"--space complex: the learned model {args.model!r} reconstructs real images (--space real, "
                         "its default)")
    space = args.space or ("real" if learned else "complex")
    try:
        H = CartesianMRI(mask, maps, real=space == "real", shape=image_shape)
    except ValueError as err:  # named by the files it came from
        files = f"--mask {args.mask}" + (f", --maps {args.maps}" if args.maps else "")
        raise UsageError(f"{files}: {err}") from None
    if tuple(kspace.shape) != H.shape_out:
        raise UsageError(f"{args.input}: k-space of shape {kspace.shape} does not match the mask and maps, which "
                         f"give {H.shape_out}")
    y = _device(kspace.astype(np.complex64), args.device)
    if args.model == "zero-filled":
        x = mri.zero_filled(H, y)
    elif args.model == "sense":
        result = mri.sense(H, y, lam=stacks.SENSE_LAM if args.lam is None else args.lam)
        _report(args, result)
        x = result.x
    else:
        reg = _regularizer(args, image_shape)
        _check_masks(args, reg)
        lam, sigma = _lam_and_sigma(args, reg, "mri-cartesian-", image_shape[-1], lambda: 1 / float(np.mean(mask)))
        bounds = (0.0, None) if space == "real" else None
        # H^H y: solve checks y (zero_filled would check it twice)
        result = _solve_on_scale(args, H.H(y), "zero-filled image", H, y, reg, lam=lam, sigma=sigma, bounds=bounds)
        _report(args, result)
        x = result.x
    with io.written_together():  # the image and its masks (of a learned model), or neither
        io.write_array(args.output, backend.to_numpy(x))
        if learned:
            _write_masks(args, reg, x, sigma)


def _fastmri(args: argparse.Namespace) -> None:
    """Every slice (or ``--slices``) of a fastMRI file, as magnitude images cropped to the recon matrix."""
    _refuse(args, ("maps",), "does not apply: a fastMRI file's coil maps are estimated per slice by ESPIRiT")
    _refuse(args, ("mask",), "does not apply: a fastMRI file carries its mask, or takes --acceleration")
    _refuse(args, ("space",), "does not apply to a fastMRI file: the output is a magnitude image (TV and the learned "
            "models reconstruct a real image under the phase of the fully sampled centre)")
    _volume(args)
    if args.acceleration is None:
        _refuse(args, ("center_fraction", "seed"), "applies to a retrospective mask (--acceleration); without it "
                "the file's own mask is used")
    _check_volume_output(args, None)
    data = fastmri.read_fastmri(args.input, slices=_slices(args.slices))
    if args.acceleration is not None and not args.acceleration >= 1:
        raise UsageError(f"--acceleration must be a factor of at least 1 (4 for x4), got {args.acceleration:g}")
    if args.acceleration is None and data.mask is None:
        raise UsageError(f"{args.input} holds fully sampled k-space (no mask): give --acceleration (e.g. 4) to "
                         "undersample it retrospectively")
    if args.acceleration is not None and data.mask is not None:
        raise UsageError(f"--acceleration: {args.input} is already undersampled (it carries its mask, used without "
                         "--acceleration); a retrospective mask needs fully sampled k-space")
    mask = mri.column_mask(data, args.acceleration, args.center_fraction, seed=args.seed or 0)
    lam = sigma = None
    if args.model not in ("zero-filled", "sense"):
        reg = _regularizer(args, data.kspace.shape[-2:])
        lam, sigma = _lam_and_sigma(args, reg, "mri-cartesian-", data.recon_shape[-1], lambda: 1 / float(mask.mean()))
    elif args.model == "sense":
        lam = args.lam
    task = stacks.FastMRIReconstruction(tuple(bool(m) for m in mask), data.recon_shape, args.model, lam, sigma,
                                        args.device)
    images = _map_slices(args, task, data.kspace, numbers=data.slices)  # errors name the file's slices
    comparison = _against_reference(args, data, images)  # before the write: an error leaves no file
    io.write_volume(args.output, images, None, f"adareg {args.model} fastMRI reconstruction, "
                    f"x{1 / mask.mean():.1f} undersampling")
    if comparison is not None:
        print(comparison, file=sys.stderr)


def _against_reference(args: argparse.Namespace, data: Any, images: np.ndarray) -> str | None:
    """fastMRI's metrics of ``images`` against the file's reconstruction, ``None`` where it has none of their shape
    (or a warning says why they cannot be computed: the output is written all the same)."""
    if data.reference is None or data.reference.shape != images.shape:
        return None

    # the data range is the whole volume's maximum: the file's max attribute where --slices read some slices
    try:
        peak = checks.positive(data.attrs.get("max"), "max") if args.slices is not None else None
    except (TypeError, ValueError):  # no max attribute, or not a positive number: the slices' own maximum
        peak = None
    over = ("the volume's maximum" if args.slices is None or peak is not None else
            "the maximum of the slices read: the file has no max attribute")
    try:
        return (f"against the file's reference: NMSE {metrics.nmse(images, data.reference):.4f}, PSNR "
                f"{metrics.volume_psnr(images, data.reference, peak):.2f} dB, SSIM "
                f"{metrics.volume_ssim(images, data.reference, peak):.4f} (fastMRI's conventions, data range "
                f"{over})")
    except ValueError as err:  # e.g. a reference that is zero everywhere
        warnings.warn(f"{args.input}: no metrics against the file's reference: {err}", stacklevel=2)
        return None


def _slices(text: str | None) -> int | slice | list[int] | None:
    """``--slices``: ``I``, ``START:STOP`` or ``I,J,K`` (file indices from 0) as ``read_fastmri`` takes them."""
    if text is None:
        return None
    try:
        if ":" in text:
            start, stop = text.split(":")
            return slice(int(start) if start else None, int(stop) if stop else None)
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--slices must be I, START:STOP or I,J,K (integers), got {text!r}") from None
    return values[0] if len(values) == 1 else values


def _check_figure(output: str) -> None:
    """Refuse, before a demo runs, a figure that matplotlib cannot write: another suffix, or a missing folder."""
    from .examples.comparison import check_figure

    try:
        check_figure(output)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _demo(args: argparse.Namespace) -> None:
    argv = [DEMOS[args.name], "--output", args.output or f"{args.name}.png"]
    saved = sys.argv
    try:
        _check_figure(argv[-1])
        if args.quiet:
            argv.append("--quiet")
        sys.argv = argv
        runpy.run_module(DEMOS[args.name], run_name="__main__")
    except ModuleNotFoundError as err:
        package = (err.name or "adareg").split(".")[0]
        if package == "adareg" or importlib.util.find_spec(package) is not None:  # a bug, or an installed package
            raise                                                                # that lacks a module: as it is
        raise UsageError(f"the {args.name} demo needs {package}, which is not installed: "
                         f"pip install 'adareg[{DEMO_EXTRAS[args.name]}]'") from None
    finally:
        sys.argv = saved


def _models(args: argparse.Namespace) -> None:
    shipped = params.available()
    if not shipped:
        print("No trained models ship with this version of adareg; load your own parameter file with "
              "--model PATH (see docs/learned.md).")
        return
    rows = [("MODEL", "FAMILY", "SIGMA (0-255)", "PARAMETERS", "TRAINED", "VALIDATION")]
    for name, metadata in sorted(shipped.items()):
        low, high = metadata["sigma_range"]
        size = sum(array.size for array in params.read(name).arrays.values())
        validation = ", ".join(f"{key.replace('_', ' ')} {format(value, '.2f') if isinstance(value, float) else value}"
                               for key, value in metadata.get("validation", {}).items())
        rows.append((name, metadata["family"], f"{low * 255:g}-{high * 255:g}", f"{size:,}",
                     str(metadata["created"])[:10], validation or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    print("\nVALIDATION: PSNR in dB measured by the training run on its validation images; docs/results.md "
          "compares the models on Set12.")


def _report(args: argparse.Namespace, result: Any) -> None:
    """The solver's one-line summary; a run that did not converge is reported even with ``--quiet``."""
    if not result.converged:
        print(f"adareg {args.command}: warning: the solver did not converge ({result.message}); the output is its "
              "last iterate", file=sys.stderr)
    elif not args.quiet:
        print(result.message, file=sys.stderr)


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """Warnings (e.g. :class:`adareg.io.IntensityWarning`) as one line on standard error."""
    print(f"adareg: warning: {' '.join(str(message).split())}", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``adareg`` command."""
    top = argparse.ArgumentParser(
        prog="adareg", description="Image reconstruction with learned, spatially adaptive sparsity-promoting "
        "regularizers: denoising, CT and MRI.")
    top.add_argument("--version", action="version", version=f"adareg {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_denoise, _add_ct, _add_mri, _add_demo_and_models):
        add(commands)
    return top


def _whole(minimum: int) -> Callable[[str], int]:
    """An option's type: a whole number of at least ``minimum`` (argparse names the option in its error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def _real(holds: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An option's type: a finite number, or a fraction such as ``1/256`` (a pixel of a unit field of view, as the
    presets' errors ask for), for which ``holds`` is true, else an error that it must be ``expected``."""
    def parse(text: str) -> float:
        try:
            value = float(fractions.Fraction(text)) if "/" in text else float(text)
        except (ValueError, ZeroDivisionError):
            raise argparse.ArgumentTypeError(f"expected a number or a fraction such as 1/256, got {text!r}") from None
        if not (math.isfinite(value) and holds(value)):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value
    return parse


def _model(text: str) -> str:
    """``--model``'s type: not empty (argparse names the option in its error)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a method, a shipped model's name or a parameter file, got ''")
    return text


_count = _whole(1)
_positive = _real(lambda value: value > 0, "positive and finite")


def _common_options(sub: argparse.ArgumentParser) -> None:
    """The options every reconstruction command takes: device, volumes, output and errors."""
    sub.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="compute with NumPy or CuPy "
                         "(default: cpu)")
    sub.add_argument("--chunk", type=_count, help="volumes: slices per solve (default: 8)")
    cluster = sub.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=_count, help="volumes: slices on a local Dask cluster of N processes")
    cluster.add_argument("--scheduler", help="volumes: slices on a running Dask cluster, e.g. tcp://host:8786")
    sub.add_argument("--quiet", action="store_true", help="no progress bar or solver message")
    sub.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def _add_denoise(commands: Any) -> None:
    """The ``denoise`` command."""
    d = commands.add_parser("denoise", help="remove Gaussian noise from a grey image",
                            description="Denoise a grey PNG/TIFF (8- or 16-bit) or NPY image.")
    d.add_argument("input", help="noisy image: .png, .tif/.tiff or .npy; or a volume (DICOM folder or file, NIfTI, "
                   "TIFF stack, 3D .npy), slice by slice")
    d.add_argument("--sigma", type=float, help="noise standard deviation on the 0-255 scale (required, but for tv "
                   "with --lam)")
    d.add_argument("--model", default="sa-cnn", type=_model, help="a shipped model's name, a parameter file, "
                   "or 'tv' (default: sa-cnn, the paper's spatially adaptive model)")
    d.add_argument("--masks", help="adaptive models: write the masks of the result, (C, H, W) .npy")
    d.add_argument("--lam", type=_positive, help="regularisation weight (default: 0.8 sigma for tv, the trained value "
                   "for learned models)")
    d.add_argument("-o", "--output", required=True, help="output image (.png, .tif, .npy); PNG and TIFF "
                   "at the input's bit depth, .npy as floats in [0, 1]; for a volume a volume (.nii, .nii.gz, .tif, "
                   ".npy, or a new folder for a DICOM series)")
    _common_options(d)
    d.set_defaults(run=_denoise)


def _add_ct(commands: Any) -> None:
    """The ``ct`` command."""
    c = commands.add_parser("ct", help="reconstruct a 2D CT sinogram",
                            description="Reconstruct an image from a 2D sinogram (.npy, angles x detectors).")
    c.add_argument("input", help="sinogram .npy, shape (angles, detectors); or a stack of them (3D .npy, TIFF "
                   "stack, NIfTI), slice by slice, (slices, angles, detectors): NIfTI voxel axes (detectors, "
                   "angles, slices)")
    c.add_argument("--angles", type=_count, required=True, help="number of equispaced angles (over [0, pi) for "
                   "parallel beam, [0, 2 pi) for fan beam; a parallel scan over a full turn: see docs/cli.md)")
    c.add_argument("--geometry", choices=("parallel", "fan"), default="parallel", help="beam (default: parallel)")
    c.add_argument("--source-distance", type=_positive, help="fan beam: source to rotation centre")
    c.add_argument("--detector-distance", type=_positive, help="fan beam: rotation centre to detector")
    c.add_argument("--pixel-size", type=_positive, default=1.0, help="pixel side, in the unit of the distances "
                   "(default: 1; the presets need 1/N, e.g. 1/256, for the N x N image the detector row covers)")
    c.add_argument("--detector-spacing", type=_positive, default=None, help="detector cell width (default: pixel size)")
    c.add_argument("--image-size", type=int, default=None, help="reconstruct an N x N image of --pixel-size pixels "
                   "(default: the largest the detector row covers, magnified in a fan beam; a smaller N crops)")
    c.add_argument("--model", default="fbp", type=_model, help="'fbp', 'tv', a shipped model's name, or a "
                   "parameter file (default: fbp); all but fbp reconstruct attenuation, x >= 0")
    c.add_argument("--window", choices=("ram-lak", "hann"), default="hann", help="FBP filter window (for tv and the "
                   "learned models, that of the FBP they start from; default: hann)")
    c.add_argument("--lam", type=_positive, help="regularisation weight (default: from --preset)")
    c.add_argument("--preset", help="an adareg.presets acquisition (default: the model's for this geometry and "
                   "number of angles, at the nearest image size)")
    c.add_argument("--photons", type=_positive, help="the scan's photons per ray of the unattenuated beam: the "
                   "preset's lam is scaled from its count (1e4) to this one (default: the preset's)")
    c.add_argument("--data-weights", choices=stacks.DATA_WEIGHTS, help="weights of the data term: 'transmission', "
                   "exp(-y), each ray's photon count relative to the unattenuated beam's (the presets' weights; "
                   "the default), or 'uniform' for data that are not a transmission scan's line integrals")
    c.add_argument("--masks", help="adaptive models: write the masks of the result, (C, H, W) .npy")
    c.add_argument("--sigma", type=float, help="learned models: the noise level given to the model (0-255 scale)")
    c.add_argument("-o", "--output", required=True, help="output image .npy; for a stack of sinograms a volume "
                   "(.nii, .nii.gz, .tif, .npy)")
    _common_options(c)
    c.set_defaults(run=_ct)


def _add_mri(commands: Any) -> None:
    """The ``mri`` command."""
    m = commands.add_parser("mri", help="reconstruct Cartesian MRI data",
                            description="Reconstruct an image from Cartesian k-space (.npy): (H, W) for one coil, "
                            "(coils, H, W) with --maps.")
    m.add_argument("input", help="k-space .npy (complex), the full grid with zeros where not sampled; or a fastMRI "
                   ".h5 file (every slice, written as a volume)")
    m.add_argument("--mask", help="sampling mask .npy, (H, W) or (W,) for columns (required for .npy k-space)")
    m.add_argument("--acceleration", type=float, help="fastMRI: undersample fully sampled data retrospectively by "
                   "this factor (default: the file's own mask)")
    m.add_argument("--center-fraction", type=_real(lambda value: 0 < value <= 1, "in (0, 1]"), help="fastMRI: "
                   "fully sampled central columns (default: 0.08 at x4, 0.04 at x8)")
    m.add_argument("--seed", type=_whole(0), help="fastMRI: seed of the retrospective mask (default 0)")
    m.add_argument("--slices", help="fastMRI: slices to reconstruct, I, START:STOP or I,J,K (default: all)")
    m.add_argument("--maps", help="coil sensitivities .npy, (coils, H, W)")
    m.add_argument("--space", choices=("real", "complex"), help=".npy k-space: the image space, real images "
                   "non-negative (x >= 0) for tv and the learned models (default: real for the learned models, "
                   "which reconstruct real images, complex otherwise)")
    m.add_argument("--model", default="zero-filled", type=_model, help="'zero-filled', 'sense', 'tv', a shipped "
                   "model's name, or a parameter file (default: zero-filled)")
    m.add_argument("--lam", type=_positive, help="regularisation weight (default: from --preset; 0.01 for sense)")
    m.add_argument("--preset", help="an adareg.presets acquisition (default: the model's at the nearest "
                   "acceleration, then image size)")
    m.add_argument("--noise", type=_positive, help="standard deviation of the k-space noise (real and imaginary "
                   "parts) of the data scaled to an image in [0, 1]: the preset's lam is scaled from its level "
                   "(0.01) to this one (default: the preset's)")
    m.add_argument("--masks", help="adaptive models: write the masks of the result, (C, H, W) .npy")
    m.add_argument("--sigma", type=float, help="learned models: the noise level given to the model (0-255 scale)")
    m.add_argument("-o", "--output", required=True, help="output image .npy; for a fastMRI file a volume (.nii, "
                   ".nii.gz, .tif, .npy)")
    _common_options(m)
    m.set_defaults(run=_mri)


def _add_demo_and_models(commands: Any) -> None:
    """The ``demo`` and ``models`` commands."""
    e = commands.add_parser("demo", help="run a built-in example and write its figure",
                            description="Run one of the built-in examples on built-in data.")
    e.add_argument("name", choices=sorted(DEMOS), help="which example; each needs extras: " + ", ".join(
        f"{name} adareg[{extras}]" for name, extras in sorted(DEMO_EXTRAS.items())))
    e.add_argument("-o", "--output", help="figure to write (default: NAME.png)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    e.set_defaults(run=_demo)

    s = commands.add_parser("models", help="list the shipped models with their metadata")
    s.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    s.set_defaults(run=_models)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            args.run(args)
    except KeyboardInterrupt:
        print("adareg: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(f"adareg {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    return 0


def _one_line(err: Exception) -> str:
    """The message of ``err`` on one line; unexpected kinds name themselves and ask for a report."""
    message = " ".join(str(err).split())
    if isinstance(err, MemoryError):
        return f"out of memory{': ' + message if message else ''} (try a smaller input)"
    if isinstance(err, (UsageError, ValueError, TypeError, OSError, ImportError, RuntimeError)):
        return message
    return f"{type(err).__name__}: {message} (an adareg bug? rerun with --debug and report the traceback)"


if __name__ == "__main__":
    sys.exit(main())
