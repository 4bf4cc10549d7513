#pragma once
// PPO (and critic-free GRPO / RLOO) for a code model: rollout with the KV-cache sampler, scoring
// (policy / reference log-probs at the sampling temperature, values, reward model, execution in
// the sandbox, safety rules), per-token KL penalty, advantages, K epochs x M minibatches through the
// engine's update(). U = alpha * L_SFT + beta * L_RLHF + gamma * Omega (docs/rlhf.md).
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "config/config.h"

namespace codex {

// Optional extra reward for tests and custom tasks: (prompt, response text) -> reward, added to the
// sequence reward (logged as reward_custom).
using CustomReward = std::function<double(const std::string& prompt, const std::string& response)>;

// Trains (or resumes) the PPO run cfg.run.dir; returns the summary JSON.
nlohmann::json ppo(const Config& cfg, const CustomReward& custom = {});

}  // namespace codex
