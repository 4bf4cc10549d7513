#pragma once
// Per-token log-probabilities (and entropy) of sampled tokens straight from hidden states and the
// LM head, for PPO scoring and its loss, plus the per-token KL estimators of Schulman's note
// (the formulas: docs/rlhf.md). Fused: the logits are formed block by block (rows x a
// vocabulary slice, on the CPU small enough to stay in cache), each block folded into per-row
// running statistics (online logsumexp: max, sum of exponentials, their x-weighted sum for the
// entropy) and dropped; the backward pass recomputes each block from the saved log-sum-exp and
// turns it straight into its gradient. Memory O(chunk_rows x vocab_block), never O(N x V).
// CPU: ops/cpu/logprob_kernel.h; CUDA builds: kernels/kl/ (one pass over each row chunk's logits).
#include <torch/torch.h>

#include <string>

namespace codex {

struct TokenLogprobs {
  torch::Tensor logprobs;  // (N)
  torch::Tensor entropy;   // (N); undefined unless asked for
};

// hidden (N, C) float32/float64, weight (V, C) the LM head (tied wte), targets (N) int64 in [0, V).
// logprobs[i] = log_softmax(hidden[i] @ weight^T / temperature)[targets[i]]; entropy[i] of that
// same tempered distribution. Differentiable w.r.t. hidden and weight (first order).
// Runs outside autocast (the logits are formed in the inputs' dtype even inside a bf16 region).
// vocab_block: vocabulary slice per block (0 = auto: ~1 MB of logits per block on the CPU).
TokenLogprobs token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                             double temperature = 1.0, bool with_entropy = false, int64_t chunk_rows = 1024,
                             int64_t vocab_block = 0);

// Policy and reference in one call (PPO rollout scoring and loss): log-probs of the sampled tokens
// under both, the per-token KL estimates k1 and k3 (as kl_estimate), and the policy's entropy
// (undefined unless with_entropy). Gradients flow to the policy side only (hidden, weight); the
// reference side runs without autograd. ref_hidden (N, C'), ref_weight (V, C').
struct PolicyRefLogprobs {
  torch::Tensor logp, ref_logp, k1, k3, entropy;
};
PolicyRefLogprobs policy_ref_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight,
                                      const torch::Tensor& ref_hidden, const torch::Tensor& ref_weight,
                                      const torch::Tensor& targets, double temperature = 1.0,
                                      bool with_entropy = true, int64_t chunk_rows = 1024);

// Per-token KL estimates from log-probs of the sampled tokens (Schulman): log_ratio = ref - policy;
//   k1 = -log_ratio, k2 = 0.5 * log_ratio^2, k3 = exp(log_ratio) - 1 - log_ratio (>= 0).
// estimator: "k1" | "k2" | "k3" (anything else: UsageError). Differentiable through both inputs.
torch::Tensor kl_estimate(const torch::Tensor& logp, const torch::Tensor& ref_logp, const std::string& estimator);

}  // namespace codex
