#pragma once
// Hugging Face GPT-2 interop: `export hf` / `import hf`.
//
// A folder in HF's GPT-2 layout holds
//   config.json        GPT2Config (model_type gpt2, vocab_size, n_positions, n_embd, n_layer, ...)
//   model.safetensors  transformer.wte.weight (V, C), transformer.wpe.weight (T, C),
//                      transformer.h.<i>.{ln_1,ln_2}.{weight,bias} (C),
//                      transformer.h.<i>.attn.c_attn.{weight (C, 3C), bias (3C)},
//                      transformer.h.<i>.attn.c_proj.{weight (C, C), bias (C)},
//                      transformer.h.<i>.mlp.c_fc.{weight (C, 4C), bias (4C)},
//                      transformer.h.<i>.mlp.c_proj.{weight (4C, C), bias (C)},
//                      transformer.ln_f.{weight,bias} (C)
//                      (Conv1D weights are (in, out): the transpose of our Linear's (out, in);
//                       the tied lm_head.weight is omitted, as HF's own writer does)
//   tokenizer.model    our tokenizer, copied along (HF has no loader for it)
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "interop/safetensors.h"
#include "model/gpt.h"

namespace codex::interop {

// HF GPT2Config for a model.
nlohmann::json hf_config(const GPTConfig& g);
// Checks an HF GPT-2 config (the architecture must be one our GPT computes exactly) and maps it;
// `what` names the file in UsageErrors.
GPTConfig gpt_config_from_hf(const nlohmann::json& j, const std::string& what);
// The model's weights under HF names, HF orientation, float32, in HF's order. A model built
// with model.bias=false gets zero biases (the same function).
std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(GPT& model);
// Copies HF-named tensors into the model. Accepts names with or without "transformer.",
// ignores the attn.bias / attn.masked_bias buffers and a lm_head.weight equal to wte; any
// missing, unknown or mis-shaped tensor is a UsageError naming `what`.
void load_hf_state_dict(GPT& model, const safetensors::File& f, const std::string& what);
// DIR/config.json + DIR/model.safetensors -> a model on CPU.
GPT load_hf_dir(const std::string& dir);

// DIR: a checkpoint folder (what load_model accepts); writes config.json, model.safetensors and
// tokenizer.model into out_dir.
void export_hf(const std::string& checkpoint_dir, const std::string& out_dir, bool force = false);
// Reads an HF folder into a checkpoint at out_dir. `tokenizer`: a tokenizer.model to use when
// in_dir has none (required then).
void import_hf(const std::string& in_dir, const std::string& out_dir, const std::string& tokenizer,
               bool force = false);

}  // namespace codex::interop
