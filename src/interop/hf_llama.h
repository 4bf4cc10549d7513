#pragma once
// Hugging Face Llama / Qwen2 interop (model.arch=llama), used by interop/hf.cpp's `export hf` /
// `import hf` when config.json's model_type is llama or qwen2.
//
// An HF folder holds config.json (LlamaConfig / Qwen2Config) and model.safetensors, or shards
// named in model.safetensors.index.json ({"weight_map": {"<tensor>": "<shard file>"}}). Tensor
// names map to ours one to one (Linear weights share the (out, in) layout, nothing transposes):
//   model.embed_tokens.weight                      wte.weight
//   model.layers.<i>.input_layernorm.weight        h.<i>.ln_1.weight
//   model.layers.<i>.self_attn.{q,k,v,o}_proj.*    h.<i>.attn.{q,k,v,o}_proj.*
//   model.layers.<i>.post_attention_layernorm.weight  h.<i>.ln_2.weight
//   model.layers.<i>.mlp.{gate,up,down}_proj.weight   h.<i>.mlp.{gate,up,down}_proj.weight
//   model.norm.weight                              ln_f.weight
//   lm_head.weight                                 lm_head.weight (untied; tied: omitted)
// bf16 / fp16 weights load into the model's float32.
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "model/gpt.h"

namespace codex::interop {

bool is_llama_family(const nlohmann::json& hf_config);  // model_type llama or qwen2
// Checks that the config describes a function our llama blocks compute exactly (no rope scaling,
// SiLU, no o_proj / MLP biases, head_dim = hidden / heads, ...) and maps it; `what` names the file.
GPTConfig llama_config_from_hf(const nlohmann::json& j, const std::string& what);
// model_type qwen2 when the q/k/v projections have biases, else llama.
nlohmann::json llama_hf_config(const GPTConfig& g);
// Our parameter name -> HF's (throws for a name with no HF counterpart).
std::string llama_hf_name(const std::string& ours);
// The model's trunk weights under HF names, float32, in registration order.
std::vector<std::pair<std::string, torch::Tensor>> llama_hf_state_dict(GPT& model);
// Copies the tensors of an HF folder (one file or index.json shards) into the model.
void load_llama_hf_weights(GPT& model, const std::string& dir);

}  // namespace codex::interop
