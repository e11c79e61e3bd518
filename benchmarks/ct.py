"""CT speed: adareg's RayTransform against direct ASTRA calls of the same geometry.

    python benchmarks/ct.py [--sizes 256 512] [--angles 180] [--repeats 7] [--device cpu|gpu]

For each image size prints the median seconds (over ``--repeats`` runs) of

* a forward projection and a back-projection through ``RayTransform`` (on the CPU its
  groups of angles on the host threads at once) and through one projector of all the
  angles: ``astra.experimental.direct_FP2D/BP2D`` on preallocated arrays (the cheapest
  way to call ASTRA) and ``astra.create_sino/create_backprojection`` (its everyday API),
  with adareg's time relative to the direct calls';
* a filtered back-projection (adareg's ``fbp``, and ASTRA's own FBP algorithm on the CPU);
* 50 iterations of TV-regularised FISTA through ``adareg.solve``.
"""

from __future__ import annotations

import argparse

import astra
import astra.experimental
import numpy as np

import adareg
from adareg.ct import fbp
from adareg.operators import RayTransform
from adareg.regularizers import TV

from timing import median_seconds  # benchmarks/timing.py, beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--angles", type=int, default=180)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args()

    on_gpu = args.device == "gpu"
    sync = (lambda: adareg.backend.cupy_module().cuda.Device().synchronize()) if on_gpu else (lambda: None)
    print(f"device {args.device}, {args.angles} parallel-beam angles, median of {args.repeats} runs (seconds)")
    print(f"{'size':>5} {'operation':28} {'adareg':>9} {'ASTRA direct':>13} {'ASTRA API':>10} {'vs direct':>9}")
    for n in args.sizes:
        H = RayTransform((n, n), args.angles, pixel_size=1.0 / n)
        phantom = adareg.to_device(adareg.data.shepp_logan((n, n)).astype(np.float32), args.device)
        sinogram = H(phantom)
        pid = astra.create_projector("cuda" if on_gpu else "linear", H.proj_geom, H.vol_geom)
        out_sino = adareg.backend.namespace(phantom).zeros(H.shape_out, dtype=np.float32)
        out_image = adareg.backend.namespace(phantom).zeros(H.shape_in, dtype=np.float32)

        rows = [
            ("forward projection", lambda: H(phantom),
             lambda: astra.experimental.direct_FP2D(pid, phantom, out_sino),
             None if on_gpu else lambda: astra.data2d.delete(astra.create_sino(phantom, pid)[0])),
            ("back-projection", lambda: H.H(sinogram),
             lambda: astra.experimental.direct_BP2D(pid, out_image, sinogram),
             None if on_gpu else lambda: astra.data2d.delete(astra.create_backprojection(sinogram, pid)[0])),
        ]
        for name, ours, direct, api in rows:
            t_ours = median_seconds(ours, args.repeats, sync)
            t_direct = median_seconds(direct, args.repeats, sync)
            t_api = median_seconds(api, args.repeats, sync) if api else float("nan")
            print(f"{n:>5} {name:28} {t_ours:9.4f} {t_direct:13.4f} {t_api:10.4f} {t_ours / t_direct - 1:+9.1%}")

        t_fbp = median_seconds(lambda: fbp(H, sinogram, window="hann"), args.repeats, sync)
        t_astra_fbp = float("nan")
        if not on_gpu:
            def astra_fbp() -> None:
                sino_id = astra.data2d.create("-sino", H.proj_geom, sinogram)
                rec_id = astra.data2d.create("-vol", H.vol_geom)
                config = astra.astra_dict("FBP")
                config.update(ProjectorId=pid, ProjectionDataId=sino_id, ReconstructionDataId=rec_id,
                              option={"FilterType": "hann"})
                alg = astra.algorithm.create(config)
                astra.algorithm.run(alg)
                astra.algorithm.delete(alg)
                astra.data2d.delete([sino_id, rec_id])
            t_astra_fbp = median_seconds(astra_fbp, args.repeats, sync)
        print(f"{n:>5} {'FBP (Hann)':28} {t_fbp:9.4f} {'':>13} {t_astra_fbp:10.4f}")  # ASTRA's FBP: its API

        tv_repeats = max(1, args.repeats // 3)  # each run is 50 iterations: fewer runs
        t_tv = median_seconds(lambda: adareg.solve(H, sinogram, TV((n, n)), lam=1e-4, bounds=(0, None),
                                                   max_iter=50, tol=0), tv_repeats, sync)
        print(f"{n:>5} {f'TV, 50 FISTA its ({tv_repeats} runs)':28} {t_tv:9.4f}")


if __name__ == "__main__":
    main()
