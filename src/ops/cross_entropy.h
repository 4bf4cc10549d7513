#pragma once
// Fused LM head + cross-entropy, computed in row chunks (the "fused linear cross-entropy" trick):
// the (N, V) logits never exist in full. Each chunk's logits are formed, reduced to the loss and,
// when a gradient is needed, turned straight into their gradient (softmax - one_hot) / n_valid,
// which is multiplied into dh and accumulated into dW while the chunk is still in cache. The
// backward pass only scales the stored dh, dW by the incoming gradient (no double backward).
//
// Same value and gradients as cross_entropy(h @ w^T, y, ignore_index) with mean reduction over
// the non-ignored targets (NaN when every target is ignored, as PyTorch); float32 or float64.
// Memory: O(chunk x V) for the logits instead of O(N x V) kept for backward. Rows whose target is
// ignored never reach the head (an SFT batch pays for its completion tokens' logits only).
#include <torch/torch.h>

namespace codex {

// h (N, C), w (V, C), y (N) int64 -> scalar loss. chunk_rows <= 0 picks ~4 MB of logits per chunk.
torch::Tensor linear_cross_entropy(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& y,
                                   int64_t ignore_index = -100, int64_t chunk_rows = 0);

}  // namespace codex
