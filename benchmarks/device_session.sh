#!/usr/bin/env bash
# The prepared run for a session lent a GPU: what issues 16, 19 and 21 need measured there.
#
#   bash benchmarks/device_session.sh prepare           # here, on the CPU machine, once per session
#   bash benchmarks/device_session.sh STAGE [MINUTES]   # there, through the device tool's run, with
#                                                       # carry [".whl", ".devdata"] and timeout_s above MINUTES
#
# prepare  downloads the wheels that the GPU image lacks (the versions installed here) into .whl/,
#          copies the training and validation images into .devdata/ (the ../shared beside the
#          checkout does not travel) and has git ignore both.  For ASTRA on a GPU image of another
#          CUDA than its wheel's 12, it also puts CUDA 12's runtime and a stand-in for cuFFT 11
#          (benchmarks/cufft11_stub.c, which says why that is enough) in .whl/cuda12/.
# stub FOLDER  builds that stand-in alone, into FOLDER (an absolute path; prepare and the tests use it)
# STAGE    each ends within MINUTES (default 8) and leaves what comes back under $OUT/STAGE:
#   checks   tests, then speed:
#   tests    the environment and the CuPy tests, every failure's message kept (issue 21)
#   speed    denoising and, where ASTRA loads, 512 x 512 CT timings (issues 21, 16)
#   norm     the training step's bank norm and a wcrr training step timed on the device (issue 19)
#   adjoint  the filter bank's adjoint channel sum in each form (benchmarks/bank_adjoint.py, issue 21)
#   wcrr     issue 19, stage 1, the bank: wcrr on WCRR-NN's recipe (L1 loss, 128 patches of 40 x 40,
#            rates decayed by 0.75 every 500 steps, a slow spline rate) from the shipped file
#   knots    stage 1b: wcrr's lam(sigma) and alpha(sigma) alone refitted with the squared error (PSNR's),
#            the bank and profile frozen, from stage 1's file (the L1 loss sets them for the absolute error)
#   masks    stage 2: sa-cnn's masks learnt on stage 1's bank, which stays frozen
#   joint    stage 3: sa-cnn, every parameter, from stage 2's file
#   wide     stage 1 at WCRR-NN's width: wcrr with a 1 -> 4 -> 8 -> 80 bank from scratch, WCRR-NN's rates
#            (filters 5e-3, profile 5e-5), for when stage 1's 32 channels plateau below WCRR-NN
# A training stage resumes from .devdata/STAGE/checkpoint.pt where an earlier call left one
# (copy $OUT/STAGE there before carrying .devdata again), else from benchmarks/checkpoints/STAGE/
# (committed when a session ends with the stage unfinished). knots starts from the file of wcrr, found
# as $OUT/wcrr/wcrr.npz (the same call), .devdata/wcrr.npz (copied from an earlier one) or
# benchmarks/checkpoints/wcrr/wcrr.npz (an earlier session's), masks from $OUT/knots/wcrr.npz, those,
# or benchmarks/checkpoints/knots/wcrr.npz, joint from $OUT/masks/sa-cnn.npz or
# .devdata/sa-cnn-masks.npz; else from the shipped files. The file chosen is copied to .devdata/init/STAGE.npz
# and named by that path, which a checkpoint of the stage's run then recognises in a later call.
# Ship a file (adareg/weights/) only where benchmarks/denoise.py shows it better on Set12.
# DEVICE=cpu runs a stage here, to try the commands before a lease; DRY_RUN=1 prints a training
# stage's command instead of running it (tests/train/test_training.py checks those commands, with
# DEVDATA naming an empty folder to read in place of .devdata, so that what a session left there
# does not change them).
set -uo pipefail
cd "$(dirname "$0")/.."
stage=${1:?"usage: $0 prepare | stub FOLDER | checks | tests | speed | norm | adjoint | wcrr | knots | masks | joint | wide [MINUTES]"}
minutes=${2:-8}
device=${DEVICE:-cuda}
OUT=${OUT:-runs/device}
devdata=${DEVDATA:-.devdata}  # what the stages read; prepare fills .devdata

if [ "$stage" = prepare ]; then
    mkdir -p .git/info
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    grep -qx '/.devdata/' .git/info/exclude 2>/dev/null || echo /.devdata/ >> .git/info/exclude
    mkdir -p .whl .devdata
    cp -r ../shared/data/bsd400 ../shared/data/set12 .devdata/
    wheels=()
    for name in array-api-compat astra-toolbox sigpy PyWavelets pydicom; do
        wheels+=("$name==$(python3 -m pip show "$name" | sed -n 's/^Version: //p')")
    done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "${wheels[@]}"
    mkdir -p .whl/cuda12
    runtime="nvidia-cuda-runtime-cu12==$(python3 -m pip show nvidia-cuda-runtime-cu12 | sed -n 's/^Version: //p')"
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 -d .whl/cuda12 "$runtime"
    python3 -c "import glob, zipfile; library = zipfile.ZipFile(glob.glob('.whl/cuda12/*.whl')[0]).read(
        'nvidia/cuda_runtime/lib/libcudart.so.12'); open('.whl/cuda12/libcudart.so.12', 'wb').write(library)" &&
        rm .whl/cuda12/*.whl
    bash "$0" stub .whl/cuda12
    du -sh .whl .devdata
    exit
fi

if [ "$stage" = stub ]; then  # the cuFFT 11 stand-in, into the folder given second (tests/test_device_session.py)
    folder=${2:?"usage: $0 stub FOLDER"}
    # the version script gives the symbols the version node that ASTRA's wheel asks for
    exec gcc -shared -fPIC -O2 -Wl,-soname,libcufft.so.11 -Wl,--version-script=benchmarks/cufft11_stub.map \
        -o "$folder/libcufft.so.11" benchmarks/cufft11_stub.c
fi

if [ "$device" = cuda ] && ls .whl/*.whl > /dev/null 2>&1; then  # the wheels are the device's Python's
    # installed once a machine: stages may run side by side (tests beside a training stage)
    [ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
    # ASTRA's wheel links CUDA 12 (libcudart.so.12, libcufft.so.11), which a GPU image of another CUDA
    # lacks (2026-12-04: CUDA 13): prepare's CUDA 12 runtime and cuFFT stand-in are found through
    # LD_LIBRARY_PATH (other sonames than the image's CUDA, so CuPy's libraries are untouched); where ASTRA
    # still cannot load, it is removed, and the CT tests skip rather than fail to collect
    python3 -c "import astra" 2> /dev/null || export LD_LIBRARY_PATH=$PWD/.whl/cuda12${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    python3 -c "import astra" 2> /dev/null || rm -rf /tmp/site/astra /tmp/site/astra_toolbox*
    # adareg.examples is examples/ in an install (pyproject's package-dir); the device runs the checkout
    [ -e adareg/examples ] || ln -s ../examples adareg/examples
    export PYTHONPATH=$PWD:$PYTHONPATH
fi
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/$stage"
seconds=$(python3 -c "print(int(60 * $minutes))")

if [ "$stage" = checks ]; then
    bash "$0" tests "$(python3 -c "print($minutes / 2)")"
    bash "$0" speed "$(python3 -c "print($minutes / 2)")"
    exit
fi

if [ "$stage" = tests ]; then
    log=$OUT/checks && mkdir -p "$log"
    { nvidia-smi -L; python3 -c "import sys, numpy, adareg; print(sys.version); print('numpy', numpy.__version__)
try:
    import cupy; print('cupy', cupy.__version__, 'CUDA runtime', cupy.cuda.runtime.runtimeGetVersion())
except ImportError as err: print(err)"; } > "$log/environment.txt" 2>&1
    timeout "$seconds" python3 -m pytest -q -rfE --tb=short -p no:cacheprovider -k "cupy or gpu" tests \
        > "$log/cupy_tests.txt" 2>&1
    tail -n 3 "$log/cupy_tests.txt"
    exit
fi

if [ "$stage" = speed ]; then
    log=$OUT/checks && mkdir -p "$log"
    limit=$seconds && python3 -c "import astra" 2> /dev/null && limit=$((seconds / 2))  # half for the CT
    timeout "$limit" python3 benchmarks/speed.py --device gpu --trained --size 512 --repeats 5 \
        --batches 1 8 --families sa-cnn wcrr --tables 1 2 5 > "$log/speed.txt" 2>&1
    [ "$limit" != "$seconds" ] && timeout $((seconds / 2 - 10)) python3 benchmarks/reconstruct.py --device gpu --cases ct512 \
        --models tv wcrr sa-cnn --repeats 1 > "$log/reconstruct.txt" 2>&1
    tail -n 3 "$log"/*.txt
    exit
fi

if [ "$stage" = norm ]; then
    { timeout $((seconds / 2)) python3 benchmarks/bank_norm.py --device "$device" --tols 0 1e-6
      timeout $((seconds / 2)) python3 benchmarks/train_step.py --device "$device" --family wcrr \
          --init adareg/weights/wcrr.npz --data "$devdata/bsd400" --batches 128 512 --repeats 3; } > "$OUT/norm/norm.txt" 2>&1
    cat "$OUT/norm/norm.txt"
    exit
fi

if [ "$stage" = adjoint ]; then
    timeout "$seconds" python3 benchmarks/bank_adjoint.py --device "${device/cuda/gpu}" --size 512 --batches 1 8 64 \
        > "$OUT/adjoint/bank_adjoint.txt" 2>&1
    cat "$OUT/adjoint/bank_adjoint.txt"
    exit
fi

first() { for file in "$@"; do [ -f "$file" ] && { echo "$file"; return; }; done; }  # the first that exists
case $stage in
    wcrr)  family=wcrr; init=adareg/weights/wcrr.npz
           options=(--loss l1 --batch-size 128 --steps 6000 --lr 1e-3 --group-lr profile=1e-5 --decay-every 500) ;;
    knots) family=wcrr; init=$(first "$OUT/wcrr/wcrr.npz" "$devdata/wcrr.npz" benchmarks/checkpoints/wcrr/wcrr.npz \
                                     adareg/weights/wcrr.npz)
           options=(--batch-size 128 --steps 300 --lr 1e-2 --group-lr bank=0 --group-lr profile=0 --decay-every 100
                    --decay-factor 0.5) ;;
    masks) family=sa-cnn; init=$(first "$OUT/knots/wcrr.npz" "$OUT/wcrr/wcrr.npz" "$devdata/wcrr.npz" \
                                       benchmarks/checkpoints/knots/wcrr.npz benchmarks/checkpoints/wcrr/wcrr.npz \
                                       adareg/weights/wcrr.npz)
           options=(--group-lr bank=0 --batch-size 256 --steps 3000 --lr 2e-3 --decay-every 500) ;;
    joint) family=sa-cnn; init=$(first "$OUT/masks/sa-cnn.npz" "$devdata/sa-cnn-masks.npz" adareg/weights/sa-cnn.npz)
           options=(--batch-size 256 --steps 3000 --lr 5e-4 --decay-every 500) ;;
    wide)  family=wcrr; init=""
           options=(--architecture "bank_channels=[4,8,80]" --loss l1 --batch-size 128 --steps 6000 --lr 5e-3
                    --group-lr profile=5e-5 --decay-every 500) ;;
    *) echo "unknown stage $stage: prepare, checks, tests, speed, norm, adjoint, wcrr, knots, masks, joint or wide" >&2
       exit 2 ;;
esac
# a stage stops 1.5 minutes before MINUTES, to validate and export in time
python3 -c "import sys; sys.exit(not $minutes > 1.5)" 2>/dev/null || {
    echo "$0: $stage needs MINUTES above 1.5 (it stops 1.5 minutes early, to export), got $minutes" >&2; exit 2; }
# knots, masks and joint start from the first of several files, which differ from call to call ($OUT is new each
# time): the one chosen is copied to one path, the same in every call, so that a checkpoint's run is recognised
if [ -n "$init" ] && [ "$stage" != wcrr ]; then
    mkdir -p "$devdata/init" && cp "$init" "$devdata/init/$stage.npz" && init="$devdata/init/$stage.npz"
fi
resumed=$(first "$devdata/$stage/checkpoint.pt" "benchmarks/checkpoints/$stage/checkpoint.pt")
[ -n "$resumed" ] && cp "$resumed" "$OUT/$stage/"
# the exported file's metadata records the seconds and steps done: the step time on this device
${DRY_RUN:+echo} python3 -m adareg_train train --family "$family" ${init:+--init "$init"} "${options[@]}" \
    --data "$devdata/bsd400" --validation "$devdata/set12" --out "$OUT/$stage" --device "$device" \
    --validate-every 250 --checkpoint-every 100 --max-minutes "$(python3 -c "print($minutes - 1.5)")" \
    --quiet 2>&1 | tee "$OUT/$stage/train.txt"
