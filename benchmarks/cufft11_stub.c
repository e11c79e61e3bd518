/* A stand-in for cuFFT 11, for ASTRA's CUDA 12 wheel on a GPU image of another CUDA.
 *
 * ASTRA's wheel links libcudart.so.12 and libcufft.so.11.  The CUDA 12 runtime is 0.7 MB
 * (the nvidia-cuda-runtime-cu12 wheel) and runs on any newer driver; cuFFT 11 is 290 MB,
 * too large to carry to the device.  ASTRA calls cuFFT only to filter projections in its
 * own FBP and FDK algorithms, which adareg does not use (its forward and back projections
 * and its FBP filter are FFT-free on ASTRA's side), so these five entry points, the ones
 * the wheel imports, load in its place and fail with CUFFT_NOT_SUPPORTED if ever called.
 *
 * Built by `bash benchmarks/device_session.sh stub FOLDER` (prepare runs it for .whl/cuda12/),
 * with benchmarks/cufft11_stub.map as its version script.
 */
typedef int cufftResult;
typedef int cufftHandle;

enum { CUFFT_NOT_SUPPORTED = 16 };

cufftResult cufftPlan1d(cufftHandle *plan, int nx, int type, int batch) { return CUFFT_NOT_SUPPORTED; }
cufftResult cufftExecR2C(cufftHandle plan, void *idata, void *odata) { return CUFFT_NOT_SUPPORTED; }
cufftResult cufftExecC2R(cufftHandle plan, void *idata, void *odata) { return CUFFT_NOT_SUPPORTED; }
cufftResult cufftSetStream(cufftHandle plan, void *stream) { return CUFFT_NOT_SUPPORTED; }
cufftResult cufftDestroy(cufftHandle plan) { return CUFFT_NOT_SUPPORTED; }
