#include "config/device.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <dlfcn.h>

#include <cstdlib>

#include "util/error.h"

namespace codex {

int configure_threads(int64_t requested) {
  int n = requested > 0 ? static_cast<int>(requested) : 1;
  torch::set_num_threads(n);
  // LibTorch calls OpenBLAS for matmuls; OpenBLAS (pthread build) has its own pool, sized to
  // every core unless told otherwise. Looked up at run time so no link dependency is added.
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
  return n;
}

namespace {
// This process's GPU under a launcher: the local rank torchrun, Slurm or Open MPI names (the same
// variables dist/dist.h reads; a malformed value is reported there), else 0.
int64_t local_gpu_index() {
  for (const char* name : {"LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"}) {
    const char* v = std::getenv(name);
    if (!v || !*v) continue;
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    return (*end || x < 0) ? 0 : static_cast<int64_t>(x);
  }
  return 0;
}
}  // namespace

torch::Device pick_device(const RunConfig& run) {
  if (run.device == "cpu") return torch::kCPU;
  if (run.device == "cuda" && !torch::cuda::is_available())
    throw UsageError("run.device=cuda but LibTorch sees no CUDA device");
  if (!torch::cuda::is_available()) return torch::Device(torch::kCPU);
  // Rank k of a launched job computes on cuda:LOCAL_RANK (one GPU per rank), also in commands
  // that form no process group (the pipeline's evaluation stages); the device becomes current.
  const torch::Device dev(torch::kCUDA, static_cast<c10::DeviceIndex>(local_gpu_index()));
  make_current_device(dev);
  return dev;
}

void make_current_device(const torch::Device& device) {
  if (!device.is_cuda()) return;
  const int64_t visible = static_cast<int64_t>(torch::cuda::device_count());
  const int64_t index = device.has_index() ? device.index() : 0;
  if (index >= visible)
    throw UsageError("cuda:" + std::to_string(index) + " requested (LOCAL_RANK) but " + std::to_string(visible) +
                     " CUDA device(s) are visible: start at most one rank per GPU (--nproc-per-node)");
  // Device-generic: the CUDA guard implementation is registered by LibTorch's CUDA library, so
  // this compiles against a CPU LibTorch too.
  c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(torch::Device(torch::kCUDA, index));
}

void configure_float32_math(const TrainConfig& train, const torch::Device& device) {
  if (!device.is_cuda()) return;
  at::globalContext().setFloat32MatmulPrecision(train.tf32 ? "high" : "highest");
  at::globalContext().setAllowTF32CuDNN(train.tf32);
}

torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device) {
  if (!t.defined() || t.device() == device) return t;
  if (device.is_cuda() && t.device().is_cpu()) return t.pin_memory().to(device, /*non_blocking=*/true);
  return t.to(device);
}

bool use_bf16_autocast(const TrainConfig& train, const torch::Device& device) {
  if (train.dtype == "fp32") return false;
  if (train.dtype == "bf16" && !device.is_cuda()) throw UsageError("train.dtype=bf16 needs a CUDA device (autocast)");
  return device.is_cuda();
}

}  // namespace codex
