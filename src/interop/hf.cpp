#include "interop/hf.h"

#include <iostream>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "interop/hf_llama.h"
#include "interop/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex::interop {
namespace {

const char* kPrefix = "transformer.";

// HF GPT-2 tensor names (without the prefix) and HF shapes, in HF's state_dict order.
std::vector<std::pair<std::string, std::vector<int64_t>>> hf_layout(const GPTConfig& g) {
  const int64_t C = g.n_embd;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {{"wte.weight", {g.vocab_size, C}},
                                                                   {"wpe.weight", {g.block_size, C}}};
  for (int64_t i = 0; i < g.n_layer; ++i) {
    std::string p = "h." + std::to_string(i) + ".";
    out.push_back({p + "ln_1.weight", {C}});
    out.push_back({p + "ln_1.bias", {C}});
    out.push_back({p + "attn.c_attn.weight", {C, 3 * C}});
    out.push_back({p + "attn.c_attn.bias", {3 * C}});
    out.push_back({p + "attn.c_proj.weight", {C, C}});
    out.push_back({p + "attn.c_proj.bias", {C}});
    out.push_back({p + "ln_2.weight", {C}});
    out.push_back({p + "ln_2.bias", {C}});
    out.push_back({p + "mlp.c_fc.weight", {C, 4 * C}});
    out.push_back({p + "mlp.c_fc.bias", {4 * C}});
    out.push_back({p + "mlp.c_proj.weight", {4 * C, C}});
    out.push_back({p + "mlp.c_proj.bias", {C}});
  }
  out.push_back({"ln_f.weight", {C}});
  out.push_back({"ln_f.bias", {C}});
  return out;
}

// HF's Conv1D stores (in, out); our Linear (out, in).
bool is_conv1d_weight(const std::string& name) {
  return ends_with(name, ".weight") && (name.find(".attn.c_") != std::string::npos ||
                                        name.find(".mlp.c_") != std::string::npos);
}

// Buffers older transformers versions saved with the weights: the causal mask and its fill value.
bool is_hf_buffer(const std::string& name) {
  return name.rfind("h.", 0) == 0 && (ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias"));
}

std::string strip_prefix(const std::string& n) {
  return n.rfind(kPrefix, 0) == 0 ? n.substr(std::strlen(kPrefix)) : n;
}

std::string shape_str(torch::IntArrayRef s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

nlohmann::json read_json(const fs::path& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace

nlohmann::json hf_config(const GPTConfig& g) {
  return {
      {"architectures", {"GPT2LMHeadModel"}},
      {"model_type", "gpt2"},
      {"vocab_size", g.vocab_size},
      {"n_positions", g.block_size},
      {"n_ctx", g.block_size},
      {"n_embd", g.n_embd},
      {"n_layer", g.n_layer},
      {"n_head", g.n_head},
      {"n_inner", nullptr},  // null = 4 * n_embd
      {"activation_function", "gelu_new"},
      {"layer_norm_epsilon", 1e-5},
      {"resid_pdrop", g.dropout},
      {"embd_pdrop", g.dropout},
      {"attn_pdrop", g.dropout},
      {"initializer_range", 0.02},
      {"scale_attn_weights", true},
      {"scale_attn_by_inverse_layer_idx", false},
      {"reorder_and_upcast_attn", false},
      {"tie_word_embeddings", true},
      {"use_cache", true},
      {"torch_dtype", "float32"},
  };
}

GPTConfig gpt_config_from_hf(const nlohmann::json& j, const std::string& what) {
  auto bad = [&](const std::string& key, const std::string& want) {
    return UsageError(what + ": " + key + ": expected " + want +
                      (j.contains(key) ? ", got " + j[key].dump() : " (missing)"));
  };
  if (!j.is_object()) throw UsageError(what + ": expected a JSON object (GPT-2 config)");
  if (j.contains("model_type") && j["model_type"] != "gpt2") throw bad("model_type", "\"gpt2\"");
  auto pos_int = [&](const std::string& key) -> int64_t {
    if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<int64_t>() <= 0)
      throw bad(key, "a positive integer");
    return j[key].get<int64_t>();
  };
  GPTConfig g;
  g.vocab_size = pos_int("vocab_size");
  g.block_size = pos_int(j.contains("n_positions") ? "n_positions" : "n_ctx");
  g.n_embd = pos_int("n_embd");
  g.n_layer = pos_int("n_layer");
  g.n_head = pos_int("n_head");
  g.dropout = 0.0;
  g.bias = true;  // HF GPT-2 always has biases
  if (g.n_embd % g.n_head != 0) throw bad("n_head", "a divisor of n_embd (" + std::to_string(g.n_embd) + ")");
  // Settings that change the function: refuse rather than import a model that computes
  // something else.
  if (j.contains("n_inner") && !j["n_inner"].is_null() && j["n_inner"] != 4 * g.n_embd)
    throw bad("n_inner", "null or 4 * n_embd");
  if (j.contains("activation_function") && j["activation_function"] != "gelu_new" &&
      j["activation_function"] != "gelu_pytorch_tanh")
    throw bad("activation_function", "\"gelu_new\" (GPT-2's tanh GELU)");
  if (j.contains("layer_norm_epsilon") &&
      (!j["layer_norm_epsilon"].is_number() || std::abs(j["layer_norm_epsilon"].get<double>() - 1e-5) > 1e-12))
    throw bad("layer_norm_epsilon", "1e-5");
  for (auto key : {"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"})
    if (j.contains(key) && j[key] != false) throw bad(key, "false");
  if (j.contains("scale_attn_weights") && j["scale_attn_weights"] != true) throw bad("scale_attn_weights", "true");
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"] != true)
    throw bad("tie_word_embeddings", "true (our LM head is tied to wte)");
  return g;
}

std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(GPT& model) {
  auto params = model->named_parameters();
  std::vector<std::pair<std::string, torch::Tensor>> out;
  torch::NoGradGuard ng;
  for (auto& [name, shape] : hf_layout(model->cfg)) {
    torch::Tensor t;
    if (auto* p = params.find(name)) {
      t = p->detach().to(torch::kCPU, torch::kFloat32);
      if (is_conv1d_weight(name)) t = t.t();  // (out, in) -> (in, out)
      t = t.contiguous();
    } else if (!model->cfg.bias && ends_with(name, ".bias")) {
      t = torch::zeros(shape);  // a Linear without bias == a Conv1D with a zero bias
    } else {
      TORCH_CHECK(false, "export: the model has no parameter ", name);
    }
    TORCH_CHECK(t.sizes() == torch::IntArrayRef(shape), "export: ", name, " has shape ", t.sizes(), ", HF expects ",
                shape_str(shape));
    out.emplace_back(kPrefix + name, t);
  }
  return out;
}

void load_hf_state_dict(GPT& model, const safetensors::File& f, const std::string& what) {
  std::map<std::string, torch::Tensor> by_name;
  for (auto& [n, t] : f.tensors) {
    std::string name = strip_prefix(n);
    if (is_hf_buffer(name)) continue;
    if (!by_name.emplace(name, t).second) throw UsageError(what + ": tensor " + name + " appears twice");
  }
  auto params = model->named_parameters();
  torch::NoGradGuard ng;
  for (auto& [name, shape] : hf_layout(model->cfg)) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw UsageError(what + ": missing tensor " + kPrefix + name + " " + shape_str(shape));
    auto t = it->second;
    if (!t.is_floating_point()) throw UsageError(what + ": tensor " + name + " is not floating point");
    if (t.sizes() != torch::IntArrayRef(shape))
      throw UsageError(what + ": tensor " + name + " has shape " + shape_str(t.sizes()) + ", config.json implies " +
                       shape_str(shape));
    auto* p = params.find(name);
    TORCH_CHECK(p, "import: the model has no parameter ", name);
    if (is_conv1d_weight(name)) t = t.t();  // (in, out) -> (out, in)
    p->copy_(t.to(p->dtype()));
    by_name.erase(it);
  }
  // HF writes the tied head only when asked to; accept it when it really is wte.
  if (auto it = by_name.find("lm_head.weight"); it != by_name.end()) {
    if (!it->second.is_floating_point() || it->second.sizes() != model->wte->weight.sizes() ||
        !torch::equal(it->second.to(torch::kFloat32), model->wte->weight.detach().to(torch::kFloat32)))
      throw UsageError(what + ": lm_head.weight differs from wte.weight (untied heads are not supported)");
    by_name.erase(it);
  }
  if (!by_name.empty()) throw UsageError(what + ": unexpected tensor " + by_name.begin()->first + " for GPT-2");
}

GPT load_hf_dir(const std::string& dir) {
  fs::path d(dir);
  if (!fs::is_directory(d)) throw UsageError(dir + ": not a folder (expected config.json + model.safetensors)");
  auto cfg_path = (d / "config.json").string();
  const nlohmann::json hf = read_json(cfg_path);
  if (is_llama_family(hf)) {  // Llama / Qwen2: interop/hf_llama.h
    GPT model(llama_config_from_hf(hf, cfg_path));
    load_llama_hf_weights(model, dir);
    model->eval();
    return model;
  }
  GPTConfig g = gpt_config_from_hf(hf, cfg_path);
  auto st_path = (d / "model.safetensors").string();
  auto file = safetensors::load(st_path);
  GPT model(g);
  load_hf_state_dict(model, file, st_path);
  model->eval();
  return model;
}

void export_hf(const std::string& checkpoint_dir, const std::string& out_dir, bool force) {
  check_overwrite(out_dir, "export hf: --out", force);
  auto lm = load_model(checkpoint_dir, torch::kCPU);
  // Written aside and renamed into place whole: an interrupted export leaves the old one.
  StagedOutput stage(out_dir, StagedOutput::Kind::kDir);
  const fs::path tmp = stage.path();
  const bool llama = lm.model->cfg.llama();
  auto tensors = llama ? llama_hf_state_dict(lm.model) : hf_state_dict(lm.model);
  safetensors::save((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}});
  nlohmann::json config = llama ? llama_hf_config(lm.model->cfg) : hf_config(lm.model->cfg);
  if (!lm.tokenizer_path.empty()) {
    Tokenizer tok(lm.tokenizer_path);
    config["bos_token_id"] = tok.eot_id();  // GPT-2's convention: <|endoftext|> starts and ends
    config["eos_token_id"] = tok.eot_id();
    if (tok.pad_id() != tok.eot_id()) config["pad_token_id"] = tok.pad_id();
    for (auto& [name, bytes] : hf_tokenizer_files(tok, lm.model->cfg.block_size))
      write_file_atomic(tmp / name, bytes);
    nlohmann::json gen = {{"bos_token_id", tok.eot_id()}, {"eos_token_id", tok.eot_id()}};
    if (tok.pad_id() != tok.eot_id()) gen["pad_token_id"] = tok.pad_id();
    write_file_atomic(tmp / "generation_config.json", gen.dump(2) + "\n");
  }
  write_file_atomic(tmp / "config.json", config.dump(2) + "\n");
  stage.commit();
  spdlog::info("export hf: {} ({} tensors) -> {}", checkpoint_dir, tensors.size(), out_dir);
}

void import_hf(const std::string& in_dir, const std::string& out_dir, const std::string& tokenizer, bool force) {
  if (!fs::is_directory(in_dir)) throw UsageError(in_dir + ": not a folder (expected config.json + model.safetensors)");
  // The checkpoint folder is written aside and renamed into place whole.
  check_overwrite(out_dir, "import hf: --out", force);
  if (fs::exists(out_dir) && !fs::is_directory(out_dir))
    throw UsageError("import hf: --out '" + out_dir + "': exists and is not a folder");
  std::string tok = tokenizer;
  if (tok.empty()) {
    tok = tokenizer_file_in(in_dir);  // tokenizer.model, tokenizer.json, or vocab.json + merges.txt
    if (tok.empty())
      throw UsageError(in_dir + ": has no tokenizer (tokenizer.model, tokenizer.json, or vocab.json + merges.txt); "
                       "pass --tokenizer T (the tokenizer the model was trained with)");
  } else if (!fs::exists(tok)) {
    throw UsageError(tok + ": tokenizer not found (--tokenizer)");
  }
  GPT model = load_hf_dir(in_dir);
  const GPTConfig& g = model->cfg;
  // Token ids index wte: a tokenizer with more ids than the embedding has rows cannot pair with it.
  if (Tokenizer t(tok); t.vocab_size() > g.vocab_size)
    throw UsageError(tok + ": tokenizer has " + std::to_string(t.vocab_size()) + " tokens, more than the model's vocab_size " +
                     std::to_string(g.vocab_size) + " (" + in_dir + "/config.json)");
  std::vector<std::string> keys = {"model.n_layer=" + std::to_string(g.n_layer), "model.n_head=" + std::to_string(g.n_head),
                                   "model.n_embd=" + std::to_string(g.n_embd),
                                   "model.block_size=" + std::to_string(g.block_size),
                                   "model.vocab_size=" + std::to_string(g.vocab_size), "model.bias=true",
                                   "model.dropout=0"};
  if (g.llama())
    keys.insert(keys.end(), {"model.arch=llama", "model.n_kv_head=" + std::to_string(g.kv_heads()),
                             "model.intermediate_size=" + std::to_string(g.mlp_width()),
                             fmt::format("model.rope_theta={:.17g}", g.rope_theta),
                             fmt::format("model.norm_eps={:.17g}", g.norm_eps),
                             std::string("model.qkv_bias=") + (g.qkv_bias ? "true" : "false"),
                             std::string("model.tie_embeddings=") + (g.tie_embeddings ? "true" : "false")});
  Config cfg = load_config("", keys);
  save_model_checkpoint(out_dir, model, cfg, tok);
  spdlog::info("import hf: {} -> {}", in_dir, out_dir);
}

namespace {

cli::Registrar export_cmd(
    {"export", "hf", "write a checkpoint as a Hugging Face folder (config.json + model.safetensors): GPT-2, or Llama / Qwen2 for model.arch=llama",
     {{"checkpoint", true, "checkpoint folder, run dir (its newest checkpoint) or checkpoints/latest"},
      {"out", true, "output folder"},
      cli::kForceFlag},
     false,
     [](cli::Invocation& inv) {
       auto out = inv.require("out");
       export_hf(inv.require("checkpoint"), out, inv.config().overwrite);
       std::cout << nlohmann::json{{"out", out}}.dump() << "\n";
       return 0;
     },
     {"overwrite"}});

cli::Registrar import_cmd(
    {"import", "hf", "read a Hugging Face GPT-2, Llama or Qwen2 folder (config.json + model.safetensors or index.json shards) into a checkpoint",
     {{"in", true, "HF GPT-2 folder"},
      {"out", true, "checkpoint folder to write"},
      {"tokenizer", true, "tokenizer (tokenizer.model, tokenizer.json or a GPT-2 vocab folder) to pair with the weights, when the folder has none"},
      cli::kForceFlag},
     false, [](cli::Invocation& inv) {
       auto out = inv.require("out");
       import_hf(inv.require("in"), out, inv.get("tokenizer"), inv.config().overwrite);
       std::cout << nlohmann::json{{"out", out}}.dump() << "\n";
       return 0;
     },
     {"overwrite"}});

}  // namespace
}  // namespace codex::interop
