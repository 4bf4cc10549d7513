#include "interop/hf_llama.h"

#include <map>
#include <set>

#include "interop/safetensors.h"
#include "util/error.h"
#include "util/fs.h"

namespace codex::interop {
namespace {

using json = nlohmann::json;

bool starts(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

json read_json_file(const fs::path& p) {
  try {
    return json::parse(read_file(p));
  } catch (const json::exception& e) {
    throw UsageError(p.string() + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace

bool is_llama_family(const json& j) {
  return j.is_object() && j.contains("model_type") && (j["model_type"] == "llama" || j["model_type"] == "qwen2");
}

GPTConfig llama_config_from_hf(const json& j, const std::string& what) {
  auto bad = [&](const std::string& key, const std::string& want) {
    return UsageError(what + ": " + key + ": expected " + want + (j.contains(key) ? ", got " + j[key].dump() : " (missing)"));
  };
  auto pos_int = [&](const std::string& key) -> int64_t {
    if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<int64_t>() <= 0) throw bad(key, "a positive integer");
    return j[key].get<int64_t>();
  };
  auto num = [&](const std::string& key, double dflt) -> double {
    if (!j.contains(key)) return dflt;
    if (!j[key].is_number() || j[key].get<double>() <= 0) throw bad(key, "a positive number");
    return j[key].get<double>();
  };
  auto flag = [&](const std::string& key, bool dflt) -> bool {
    if (!j.contains(key) || j[key].is_null()) return dflt;
    if (!j[key].is_boolean()) throw bad(key, "true or false");
    return j[key].get<bool>();
  };
  const bool qwen2 = j["model_type"] == "qwen2";
  GPTConfig g;
  g.arch = "llama";
  g.vocab_size = pos_int("vocab_size");
  g.n_embd = pos_int("hidden_size");
  g.n_layer = pos_int("num_hidden_layers");
  g.n_head = pos_int("num_attention_heads");
  g.n_kv_head = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null() ? pos_int("num_key_value_heads")
                                                                                           : g.n_head;
  g.intermediate_size = pos_int("intermediate_size");
  g.block_size = pos_int("max_position_embeddings");
  g.rope_theta = num("rope_theta", 10000.0);
  g.norm_eps = num("rms_norm_eps", 1e-6);
  g.tie_embeddings = flag("tie_word_embeddings", false);  // both HF configs default to untied
  g.qkv_bias = qwen2 ? true : flag("attention_bias", false);
  g.dropout = 0.0;
  if (g.n_embd % g.n_head != 0) throw bad("num_attention_heads", "a divisor of hidden_size");
  if (g.n_head % g.n_kv_head != 0) throw bad("num_key_value_heads", "a divisor of num_attention_heads");
  // Settings that change the function: refused rather than imported as something else.
  if (j.contains("head_dim") && !j["head_dim"].is_null() && j["head_dim"] != g.n_embd / g.n_head)
    throw bad("head_dim", "hidden_size / num_attention_heads (" + std::to_string(g.n_embd / g.n_head) + ")");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    throw bad("rope_scaling", "null (scaled rotary positions, e.g. Llama 3.1's, are not supported)");
  if (j.contains("hidden_act") && j["hidden_act"] != "silu") throw bad("hidden_act", "\"silu\"");
  if (!qwen2 && flag("attention_bias", false))
    throw bad("attention_bias", "false (Llama's attention_bias adds an o_proj bias too, which our blocks lack)");
  if (flag("mlp_bias", false)) throw bad("mlp_bias", "false");
  if (qwen2 && flag("use_sliding_window", false)) throw bad("use_sliding_window", "false");
  if (j.contains("partial_rotary_factor") && j["partial_rotary_factor"] != 1.0)
    throw bad("partial_rotary_factor", "1 (partial rotary is not supported)");
  return g;
}

json llama_hf_config(const GPTConfig& g) {
  const bool qwen2 = g.qkv_bias;
  json j = {{"architectures", {qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
            {"model_type", qwen2 ? "qwen2" : "llama"},
            {"vocab_size", g.vocab_size},
            {"hidden_size", g.n_embd},
            {"intermediate_size", g.mlp_width()},
            {"num_hidden_layers", g.n_layer},
            {"num_attention_heads", g.n_head},
            {"num_key_value_heads", g.kv_heads()},
            {"max_position_embeddings", g.block_size},
            {"rms_norm_eps", g.norm_eps},
            {"rope_theta", g.rope_theta},
            {"rope_scaling", nullptr},
            {"hidden_act", "silu"},
            {"tie_word_embeddings", g.tie_embeddings},
            {"initializer_range", 0.02},
            {"use_cache", true},
            {"torch_dtype", "float32"}};
  if (qwen2) j["use_sliding_window"] = false;
  else j.update({{"attention_bias", false}, {"mlp_bias", false}});
  return j;
}

std::string llama_hf_name(const std::string& n) {
  if (n == "wte.weight") return "model.embed_tokens.weight";
  if (starts(n, "ln_f.")) return "model.norm." + n.substr(5);
  if (n == "lm_head.weight") return n;
  if (starts(n, "h.")) {
    const auto dot = n.find('.', 2);
    const std::string layer = n.substr(2, dot - 2), rest = n.substr(dot + 1);
    const std::string p = "model.layers." + layer + ".";
    if (starts(rest, "ln_1.")) return p + "input_layernorm." + rest.substr(5);
    if (starts(rest, "ln_2.")) return p + "post_attention_layernorm." + rest.substr(5);
    if (starts(rest, "attn.")) return p + "self_attn." + rest.substr(5);
    if (starts(rest, "mlp.")) return p + rest;
  }
  throw std::runtime_error("llama_hf_name: no HF name for parameter " + n);
}

std::vector<std::pair<std::string, torch::Tensor>> llama_hf_state_dict(GPT& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  torch::NoGradGuard ng;
  for (auto& kv : model->named_parameters()) {
    if (is_head_parameter(kv.key())) continue;
    out.emplace_back(llama_hf_name(kv.key()), kv.value().detach().to(torch::kCPU, torch::kFloat32).contiguous());
  }
  return out;
}

void load_llama_hf_weights(GPT& model, const std::string& dir) {
  const fs::path d(dir), index = d / "model.safetensors.index.json";
  std::vector<std::string> files;  // shards, each once, in the index's order of first use
  if (fs::exists(index)) {
    json j = read_json_file(index);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw UsageError(index.string() + ": expected {\"weight_map\": {\"<tensor>\": \"<file>\"}}");
    std::set<std::string> seen;
    for (auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos)
        throw UsageError(index.string() + ": weight_map[\"" + name + "\"]: expected a file name in the folder");
      if (seen.insert(file.get<std::string>()).second) files.push_back(file.get<std::string>());
    }
  } else {
    files.push_back("model.safetensors");
  }
  std::map<std::string, std::pair<torch::Tensor, std::string>> by_name;  // HF name -> (tensor, file)
  std::vector<safetensors::File> loaded;
  for (auto& f : files) {
    const std::string path = (d / f).string();
    if (!fs::exists(path)) throw UsageError(path + ": missing (named by " + (fs::exists(index) ? index.string() : "the folder") + ")");
    loaded.push_back(safetensors::load(path));
    for (auto& [n, t] : loaded.back().tensors)
      if (!by_name.emplace(n, std::make_pair(t, path)).second) throw UsageError(path + ": tensor " + n + " appears twice");
  }
  torch::NoGradGuard ng;
  for (auto& kv : model->named_parameters()) {
    if (is_head_parameter(kv.key())) continue;
    const std::string hf = llama_hf_name(kv.key());
    auto it = by_name.find(hf);
    if (it == by_name.end()) throw UsageError(dir + ": missing tensor " + hf + " (config.json implies it)");
    const torch::Tensor& t = it->second.first;
    if (!t.is_floating_point()) throw UsageError(it->second.second + ": tensor " + hf + " is not floating point");
    if (t.sizes() != kv.value().sizes())
      throw UsageError(it->second.second + ": tensor " + hf + " has shape " + c10::str(t.sizes()) +
                       ", config.json implies " + c10::str(kv.value().sizes()));
    kv.value().copy_(t.to(kv.value().dtype()));
    by_name.erase(it);
  }
  // A tied model's head may be written anyway (some writers do): accepted when it is the embedding.
  if (auto it = by_name.find("lm_head.weight"); it != by_name.end() && model->cfg.tied()) {
    if (!it->second.first.is_floating_point() ||
        !torch::equal(it->second.first.to(torch::kFloat32), model->wte->weight.detach().to(torch::kFloat32)))
      throw UsageError(dir + ": lm_head.weight differs from the embedding but config.json says tie_word_embeddings");
    by_name.erase(it);
  }
  for (auto it = by_name.begin(); it != by_name.end();) {  // rotary caches some writers keep
    if (it->first.find("rotary_emb.inv_freq") != std::string::npos) it = by_name.erase(it);
    else ++it;
  }
  if (!by_name.empty()) throw UsageError(by_name.begin()->second.second + ": unexpected tensor " + by_name.begin()->first);
}

}  // namespace codex::interop
