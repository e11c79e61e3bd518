"""The filter bank's adjoint channel sum in the forms a backend offers, alone and inside ``W^T``.

    python benchmarks/bank_adjoint.py [--device cpu|gpu] [--size 512] [--batches 1 8] [--repeats 20]

``W^T`` of the shipped ``sa-cnn`` bank (one FFT correlation from its C channels to one) sums,
at each frequency, the products of the C channels' spectra with their filters':
``out[b] = sum_o k[o] a[b, o]``.  adareg (``Conv2d._mix``) accumulates it channel by
channel on the host (on 2 CPU cores about twice as fast as ``einsum``) and, on CuPy, with a
``ReductionKernel`` that fuses the product into the sum (the loop there is 2 C small kernel
launches per call).  This script times, on one device, adareg's form against the loop, one
broadcast product and sum (``xp.sum(k * a, axis=1)``) and ``einsum``; each form's largest difference
from the float64 NumPy sum is printed, so a fast form that is wrong shows.  Then ``W^T`` of
a float32 ``size x size`` image with the shipped form and with the fastest one patched in
(the benchmark's patch only; adareg is unchanged), and ``W`` for scale.  Last, ``W`` and
``W^T`` stage by stage (padding, zero extension, FFTs, channel mixing, folding the borders
back), each stage timed alone on the last one's output, and the relative difference of the
composed stages from the operator, so the table shows where a pass spends its time; it
follows ``Conv2d``'s private steps and must change with them.  Medians of ``--repeats``
runs after a warm-up.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

import numpy as np

import adareg
from adareg import backend
from adareg.operators.conv import _PAD_MODE, Conv2d, _unpad

from timing import median_seconds  # benchmarks/timing.py, beside this script


def forms(xp: Any) -> dict[str, Callable[[Any, Any], Any]]:
    """``(k, a) -> sum_o k[o, 0] a[:, o]`` with the channel axis kept, ``k`` of shape ``(C, 1, I, J)``."""
    mix = Conv2d._mix  # adareg's own, taken before main() patches the class

    def shipped(k: Any, a: Any) -> Any:
        return mix(None, k, a, adjoint=True)  # the method reads no attribute of its instance

    def loop(k: Any, a: Any) -> Any:
        total = k[0] * a[:, :1]
        for o in range(1, k.shape[0]):
            total += k[o] * a[:, o : o + 1]
        return total

    table = {
        "shipped (Conv2d._mix)": shipped,
        "channel by channel": loop,
        "xp.sum(k * a, axis=1)": lambda k, a: xp.sum(k[None, :, 0] * a, axis=1, keepdims=True),
        "einsum": lambda k, a: xp.einsum("o...,bo...->b...", k[:, 0], a)[:, None],
    }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    on_gpu = args.device == "gpu"
    if on_gpu:
        cupy = backend.cupy_module()
        xp, sync = cupy, lambda: cupy.cuda.Device().synchronize()
    else:
        xp, sync = np, lambda: None
    bank = adareg.load("sa-cnn").bank
    shape = (args.size, args.size)
    W = bank.operator(shape)
    conv = W if isinstance(W, Conv2d) else None
    if conv is None:
        raise SystemExit(f"the bank's operator is {type(W).__name__}, not one Conv2d: nothing to time here")
    fft = backend.fft(xp.zeros(1, dtype=xp.float32))
    grid = conv._fft_grid(fft)
    like = xp.zeros(shape, dtype=xp.float32)
    k = conv._spectrum(like, True, True, grid)
    channels = k.shape[0]
    print(f"python {' '.join(sys.argv)}\ndevice {args.device}; sa-cnn bank, {channels} channels, FFT grid {grid}, "
          "complex64 spectra")
    rng = np.random.default_rng(0)
    table = forms(xp)
    for batch in args.batches:
        spectra = (rng.standard_normal((batch, channels) + k.shape[2:])
                   + 1j * rng.standard_normal((batch, channels) + k.shape[2:])).astype(np.complex64)
        reference = np.sum(backend.to_numpy(k)[None, :, 0].astype(np.complex128) * spectra, axis=1, keepdims=True)
        a = xp.asarray(spectra)
        print(f"\nbatch {batch}: {'form':30} {'seconds':>10} {'largest difference (relative)':>30}")
        for name, form in table.items():
            seconds = median_seconds(lambda: form(k, a), args.repeats, sync)
            out = backend.to_numpy(form(k, a))
            difference = float(np.max(np.abs(out - reference)) / np.max(np.abs(reference)))
            print(f"{'':9}{name:30} {seconds:10.5f} {difference:30.1e}")
    x = adareg.to_device(rng.random(shape).astype(np.float32), args.device)
    y = W(x)
    print(f"\n{args.size}x{args.size} float32: W {median_seconds(lambda: W(x), args.repeats, sync):.5f} s")
    original = Conv2d._mix
    for name, form in table.items():
        def patched(self: Conv2d, k: Any, a: Any, adjoint: bool, form: Callable = form) -> Any:
            return form(k, a) if adjoint and k.shape[1] == 1 else original(self, k, a, adjoint)

        Conv2d._mix = patched
        try:
            print(f"  W^T with {name:30} {median_seconds(lambda: W.H(y), args.repeats, sync):.5f} s")
        finally:
            Conv2d._mix = original
    print(f"\nW and W^T stage by stage (Conv2d's FFT path, as in {Conv2d.__module__}), seconds:")
    for direction, image, passes, whole in (("W", x, forward_stages(conv, xp), W(x)),
                                            ("W^T", y, adjoint_stages(conv, xp), W.H(y))):
        for name, stage in passes:
            seconds = median_seconds(lambda: stage(image), args.repeats, sync)
            print(f"  {direction:4}{name:38} {seconds:10.5f}")
            image = stage(image)
        error = float(xp.max(xp.abs(image.reshape(whole.shape) - whole)) / xp.max(xp.abs(whole)))
        print(f"  {direction:4}{'(the stages against the operator)':38} {error:10.1e}")


def forward_stages(conv: Conv2d, xp: Any) -> list[tuple[str, Callable[[Any], Any]]]:
    """``W x`` of one image as the steps of ``Conv2d._apply`` and ``_fft_filter``, each a function of the last
    one's output."""
    fft = backend.fft(xp.zeros(1, dtype=xp.float32))
    grid = conv._fft_grid(fft)
    h, w = conv.image_shape

    def extend(padded: Any) -> Any:
        extended = xp.zeros(padded.shape[:-2] + grid, dtype=padded.dtype)
        extended[..., : padded.shape[-2], : padded.shape[-1]] = padded
        return extended

    def mix(a: Any) -> Any:
        return conv._mix(conv._spectrum(xp.zeros(1, dtype=xp.float32), True, False, grid), a, adjoint=False)

    def pad(x: Any) -> Any:
        return xp.pad(x[None, None], ((0, 0), (0, 0), *conv.pads), mode=_PAD_MODE[conv.boundary])

    return [("pad the image", pad),
            ("zero-extend to the FFT grid", extend),
            ("rfftn", lambda e: fft.rfftn(e, axes=(-2, -1))),
            ("channel product", mix),
            ("ifft along columns, rows kept", lambda m: fft.ifft(m, axis=-2)[..., :h, :]),
            ("irfft along rows", lambda c: fft.irfft(c, n=grid[1], axis=-1)[..., :w])]


def adjoint_stages(conv: Conv2d, xp: Any) -> list[tuple[str, Callable[[Any], Any]]]:
    """``W^T y`` of one image's responses as the steps of ``Conv2d._adjoint`` and ``_fft_filter``."""
    fft = backend.fft(xp.zeros(1, dtype=xp.float32))
    grid = conv._fft_grid(fft)
    hp, wp = conv._padded_shape()
    (top, bottom), (left, right) = conv.pads
    h, w = conv.image_shape

    def extend(y: Any) -> Any:
        extended = xp.zeros((1,) + y.shape[:1] + grid, dtype=y.dtype)
        extended[0, :, : y.shape[-2], : y.shape[-1]] = y
        return extended

    def mix(a: Any) -> Any:
        return conv._mix(conv._spectrum(xp.zeros(1, dtype=xp.float32), True, True, grid), a, adjoint=True)

    def unpad(z: Any) -> Any:  # on a copy: _unpad adds the borders onto z's interior in place
        z = _unpad(z.copy(), -2, h, top, bottom, conv.boundary)
        return _unpad(z, -1, w, left, right, conv.boundary)

    return [("zero-extend to the FFT grid", extend),
            ("rfftn", lambda e: fft.rfftn(e, axes=(-2, -1))),
            ("channel sum", mix),
            ("ifft along columns, rows kept", lambda m: fft.ifft(m, axis=-2)[..., :hp, :]),
            ("irfft along rows", lambda c: fft.irfft(c, n=grid[1], axis=-1)[..., :wp]),
            ("copy, fold the reflected borders back", unpad)]


if __name__ == "__main__":
    main()
