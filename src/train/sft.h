#pragma once
// Supervised fine-tuning (M1): Codex-S (prompt -> solution) and Codex-D (signature + body ->
// docstring) from a problems file, or any demonstrations file. A recipe over the engine: the loss
// is the token mean over completion tokens only (sft.mask_prompt), batches are left-padded.
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "model/gpt.h"
#include "train/sequences.h"

namespace codex {

struct Problem;

// The (prompt, completion) pairs a data file gives for `task` ("code" | "docstring"). A problems
// file (task_id + prompt + canonical_solution per line) or a demos file ({prompt, completion |
// response}). Problems without a solution are skipped; for `docstring` problems without a
// docstring are skipped. UsageError on a bad file (file:line).
std::vector<std::pair<std::string, std::string>> sft_pairs(const std::string& path, const std::string& task);

// Codex-D: the problem's prompt with its docstring removed, then its body, then a docstring
// opener; the completion is the docstring text and its closing quotes. Empty pair when the prompt
// has no docstring.
std::pair<std::string, std::string> docstring_task(const Problem& p);

// The problem's prompt with its docstring text replaced by `doc` (the round trip: Codex-S reads a
// docstring Codex-D wrote). Empty when the prompt has no docstring.
std::string with_docstring(const Problem& p, const std::string& doc);

// SFT's loss of one batch (make_batch's layout): the sum over the batch's targets (those not
// -100: completion tokens when prompts are masked) of -log p(target | everything before it), and
// the number of those targets. The trainer divides the sum by the count over micro-batches and
// ranks (a token mean); val_loss is the same ratio over the validation set.
std::pair<torch::Tensor, double> sft_batch_loss(GPT& model, const SeqBatch& b, const torch::Device& dev);

// Trains (or resumes) the SFT run cfg.run.dir; returns the summary JSON.
nlohmann::json sft(const Config& cfg);

}  // namespace codex
