#include "util/device.h"

#include <dlfcn.h>

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

torch::Device pick_device(const RunConfig& run) {
  if (run.device == "cpu") return torch::kCPU;
  if (run.device == "cuda") {
    if (!torch::cuda::is_available()) throw UsageError("run.device=cuda but LibTorch sees no CUDA device");
    return torch::Device(torch::kCUDA, 0);
  }
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
}

bool use_bf16_autocast(const TrainConfig& train, const torch::Device& device) {
  if (train.dtype == "fp32") return false;
  if (train.dtype == "bf16" && !device.is_cuda()) throw UsageError("train.dtype=bf16 needs a CUDA device (autocast)");
  return device.is_cuda();
}

}  // namespace codex
