#pragma once
// The one device / threads policy every command uses (training, generation, evaluation, scoring).
#include <torch/torch.h>

#include "config/config.h"

namespace codex {

// Sets LibTorch's intra-op threads (and OpenBLAS's) to run.threads, or to the measured default
// (1: on the 2-core CI machine the small models lose more to synchronisation than they gain,
// docs/pretrain.md) when 0. Returns the number used.
int configure_threads(int64_t requested);
// run.device: auto -> cuda:0 when LibTorch has CUDA, else cpu; `cuda` without a device is a UsageError.
torch::Device pick_device(const RunConfig& run);
// train.dtype: auto -> bf16 autocast on CUDA, fp32 on CPU.
bool use_bf16_autocast(const TrainConfig& train, const torch::Device& device);

}  // namespace codex
