#pragma once
// The one device / threads policy every command uses (training, generation, evaluation, scoring).
#include <torch/torch.h>

#include "config/config.h"

namespace codex {

// Sets LibTorch's intra-op threads (and OpenBLAS's) to run.threads, or to the measured default
// (1: on the 2-core CI machine the small models lose more to synchronisation than they gain,
// docs/pretrain.md) when 0. Returns the number used.
int configure_threads(int64_t requested);
// run.device: auto -> CUDA when LibTorch has it, else cpu; `cuda` without a device is a UsageError.
// The CUDA device is cuda:<local rank> under torchrun / Slurm / Open MPI (cuda:0 alone), made current.
torch::Device pick_device(const RunConfig& run);
// Makes `device` the calling thread's current CUDA device (a no-op for CPU devices), so that
// LibTorch's current stream, cuBLAS handles and NCCL communicators of rank k are those of
// cuda:LOCAL_RANK. A device index beyond the visible GPUs is a UsageError.
void make_current_device(const torch::Device& device);
// train.tf32 on a CUDA device: float32 matmuls (cuBLAS) and convolutions (cuDNN) may use TF32
// tensor cores (Ampere and newer); off = full float32. CPU devices: nothing to set.
void configure_float32_math(const TrainConfig& train, const torch::Device& device);
// A batch tensor onto the training device: CPU -> CUDA copies go through pinned memory and do not
// block the host (the copy is ordered on the current stream before the kernels that read it);
// anything else is a plain .to(device).
torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device);
// train.dtype: auto -> bf16 autocast on CUDA, fp32 on CPU.
bool use_bf16_autocast(const TrainConfig& train, const torch::Device& device);

}  // namespace codex
