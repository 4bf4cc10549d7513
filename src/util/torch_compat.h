#pragma once
// The one place where LibTorch versions differ for this project. The CPU build uses Debian's
// LibTorch 1.13; a CUDA build uses a PyTorch 2.x install's LibTorch (docs/gpu.md). Everything
// that differs between the two is spelled here, once, so the rest of the code compiles on both.
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#define CODEX_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// c10d: from 2.0 the Gloo and NCCL process groups derive from c10d::Backend (a ProcessGroup wraps
// backends); in 1.x they derive from c10d::ProcessGroup. Both bases have the same collective
// calls (allreduce, broadcast, allgather, barrier returning intrusive_ptr<Work>).
namespace c10d {
#if TORCH_VERSION_MAJOR >= 2
class Backend;
#else
class ProcessGroup;
#endif
}  // namespace c10d

namespace codex {

#if TORCH_VERSION_MAJOR >= 2
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif

// torch::scaled_dot_product_attention (fused flash / memory-efficient kernels on CUDA) exists from 2.0.
#define CODEX_HAS_SDPA (TORCH_VERSION_MAJOR >= 2)

// bf16/fp16 autocast on CUDA. From 2.4 the device-type forms replace the deprecated CUDA-only
// set_enabled / set_autocast_gpu_dtype / is_enabled.
inline void set_cuda_autocast(bool enabled, at::ScalarType dtype = at::kBFloat16) {
#if CODEX_TORCH_AT_LEAST(2, 4)
  if (enabled) at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
#else
  if (enabled) at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(enabled);
#endif
}

inline bool cuda_autocast_enabled() {
#if CODEX_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}

}  // namespace codex
