#include "checkpoint/checkpoint.h"

#include "tokenizer/tokenizer.h"

#include <ATen/Context.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"

namespace codex {
namespace {

using json = nlohmann::json;
using Files = std::vector<std::pair<std::string, std::string>>;  // (name, bytes)

std::string to_string(const std::vector<char>& v) { return std::string(v.begin(), v.end()); }

json gpt_to_json(const GPTConfig& g) {
  json j = {{"vocab_size", g.vocab_size}, {"n_layer", g.n_layer}, {"n_head", g.n_head}, {"n_embd", g.n_embd},
            {"block_size", g.block_size}, {"dropout", g.dropout}, {"bias", g.bias}};
  if (g.llama())  // written only for llama, so gpt2 checkpoints stay byte-identical to earlier ones
    j.update({{"arch", g.arch}, {"n_kv_head", g.kv_heads()}, {"intermediate_size", g.mlp_width()},
              {"rope_theta", g.rope_theta}, {"norm_eps", g.norm_eps}, {"qkv_bias", g.qkv_bias},
              {"tie_embeddings", g.tie_embeddings}});
  return j;
}

GPTConfig gpt_from_json(const json& j) {
  GPTConfig g;
  g.vocab_size = j.at("vocab_size");
  g.n_layer = j.at("n_layer");
  g.n_head = j.at("n_head");
  g.n_embd = j.at("n_embd");
  g.block_size = j.at("block_size");
  g.dropout = j.value("dropout", 0.0);
  g.bias = j.value("bias", true);
  g.arch = j.value("arch", std::string("gpt2"));
  g.n_kv_head = j.value("n_kv_head", int64_t{0});
  g.intermediate_size = j.value("intermediate_size", int64_t{0});
  g.rope_theta = j.value("rope_theta", 10000.0);
  g.norm_eps = j.value("norm_eps", 1e-6);
  g.qkv_bias = j.value("qkv_bias", false);
  g.tie_embeddings = j.value("tie_embeddings", true);
  return g;
}

std::string module_file(const std::string& module, const char* what) {
  if (module == "model") return std::string(what) == "weights" ? "model.pt" : "optim.pt";
  return module + (std::string(what) == "weights" ? ".pt" : ".optim.pt");
}

std::string weights_bytes(GPT& model) {
  c10::Dict<std::string, torch::Tensor> d;
  for (auto& kv : model->named_parameters())
    d.insert(kv.key(), kv.value().detach().to(torch::kCPU, torch::kFloat32).contiguous());
  return to_string(torch::pickle_save(d));
}

std::string optim_bytes(torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive ar;
  opt.save(ar);
  std::ostringstream os;
  ar.save_to(os);
  return os.str();
}

// Every generator a run draws from: torch's CPU generator (init, dropout) and, when present,
// each CUDA device's.
std::string rng_bytes() {
  c10::Dict<std::string, torch::Tensor> d;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    d.insert("cpu", gen.get_state());
  }
  if (torch::cuda::is_available())
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i) {
      auto gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      d.insert("cuda:" + std::to_string(i), gen.get_state());
    }
  return to_string(torch::pickle_save(d));
}

// Writes `files` plus MANIFEST.json into a hidden sibling folder, then renames it to `final_dir`
// (replacing an older folder of that name): readers see either nothing or a complete checkpoint.
// A failure (a full disk) removes the hidden folder, so it does not hold the space, and says why.
void write_folder(const fs::path& final_dir, const Files& files) {
  const fs::path parent = final_dir.has_parent_path() ? final_dir.parent_path() : fs::path(".");
  const fs::path tmp = parent / (".tmp-" + final_dir.filename().string() + "." + std::to_string(::getpid()));
  try {
    fs::create_directories(parent);
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    json manifest = {{"magic", kCheckpointMagic}, {"format_version", kCheckpointVersion}, {"files", json::object()}};
    for (auto& [name, bytes] : files) {
      write_file_atomic(tmp / name, bytes);
      manifest["files"][name] = {{"bytes", bytes.size()}, {"fnv1a64", hex64(fnv1a64(bytes.data(), bytes.size()))}};
    }
    write_file_atomic(tmp / "MANIFEST.json", manifest.dump(2) + "\n");
    fsync_dir(tmp);
    if (fs::exists(final_dir)) fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw RunError("checkpoint " + final_dir.string() + " not written: " + e.what() +
                   "; the previous checkpoints are intact (fix the cause, then continue with resume=true)");
  }
  fsync_dir(parent);
}

void add_common(Files& files, const std::vector<ModuleRef>& modules, const Config& cfg,
                const std::string& tokenizer_path, json state) {
  TORCH_CHECK(!modules.empty() && modules[0].name == "model", "checkpoint: the first module must be 'model'");
  for (auto& m : modules) {
    files.emplace_back(module_file(m.name, "weights"), weights_bytes(const_cast<GPT&>(m.model)));
    if (m.name == "model") {
      state["gpt"] = gpt_to_json(m.model->cfg);
      state["heads"] = m.model->head_names();
    } else {
      state["modules"][m.name] = {{"gpt", gpt_to_json(m.model->cfg)}, {"heads", m.model->head_names()}};
    }
  }
  files.emplace_back("state.json", state.dump(2) + "\n");
  files.emplace_back("config.yaml", config_to_yaml(cfg));
  if (!tokenizer_path.empty() && fs::exists(tokenizer_path)) {
    auto [name, bytes] = tokenizer_file(tokenizer_path);  // tokenizer.model or tokenizer.json
    files.emplace_back(name, std::move(bytes));
  }
  else
    spdlog::warn("checkpoint: no tokenizer at '{}'; the checkpoint will carry none", tokenizer_path);
}

// step_XXXXXXXX folders under `ckdir`, newest first.
std::vector<std::pair<int64_t, fs::path>> step_folders(const fs::path& ckdir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::is_directory(ckdir)) return out;
  for (auto& e : fs::directory_iterator(ckdir)) {
    const std::string n = e.path().filename().string();
    if (!e.is_directory() || n.size() != 13 || n.rfind("step_", 0) != 0) continue;
    if (n.find_first_not_of("0123456789", 5) != std::string::npos) continue;
    out.emplace_back(std::stoll(n.substr(5)), e.path());
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first > b.first; });
  return out;
}

c10::impl::GenericDict read_pickled_dict(const fs::path& p) {
  auto bytes = read_file(p);
  return torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toGenericDict();
}

// Keeps the newest `keep` *valid* step folders (`newest`, just written, counts as valid) and
// deletes older ones. A corrupt folder is moved aside to corrupt-step_... with a warning and never
// counted, so a good older checkpoint is not deleted in its favour. Each folder is verified once
// per process (a full read of its files).
void prune_checkpoints(const fs::path& ckdir, const std::string& newest, int64_t keep) {
  static std::set<std::string> verified;
  int64_t kept = 0;
  for (auto& [s, p] : step_folders(ckdir)) {
    const bool just_written = p.filename() == newest;
    if (kept >= keep && !just_written) {
      fs::remove_all(p);
      continue;
    }
    if (!just_written && !verified.count(p.string())) {
      try {
        verify_checkpoint(p.string());
        verified.insert(p.string());
      } catch (const std::exception& e) {
        const fs::path aside = ckdir / ("corrupt-" + p.filename().string());
        std::error_code ec;
        fs::remove_all(aside, ec);
        fs::rename(p, aside, ec);
        spdlog::warn("checkpoint {} is corrupt ({}); moved aside to {} and not counted in train.keep_checkpoints",
                     p.string(), e.what(), aside.filename().string());
        continue;
      }
    }
    ++kept;
  }
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

void save_model_checkpoint(const std::string& dir, GPT& model, const Config& cfg, const std::string& tokenizer_path) {
  Files files;
  add_common(files, {ModuleRef{"model", model, nullptr}}, cfg, tokenizer_path, json{{"step", 0}, {"kind", "weights"}});
  write_folder(dir, files);
}

std::string save_training_checkpoint(const std::string& run_dir, int64_t step, GPT& model,
                                     torch::optim::Optimizer* opt, const Config& cfg,
                                     const std::string& tokenizer_path, const json& state) {
  return save_training_checkpoint(run_dir, step, {ModuleRef{"model", model, opt}}, cfg, tokenizer_path, state);
}

std::string save_training_checkpoint(const std::string& run_dir, int64_t step, const std::vector<ModuleRef>& modules,
                                     const Config& cfg, const std::string& tokenizer_path, const json& state) {
  const fs::path ckdir = fs::path(run_dir) / "checkpoints";
  json st = state;
  st["step"] = step;
  st["kind"] = modules.at(0).opt ? "training" : "weights";
  Files files;
  add_common(files, modules, cfg, tokenizer_path, st);
  for (auto& m : modules)
    if (m.opt) files.emplace_back(module_file(m.name, "optim"), optim_bytes(*m.opt));
  files.emplace_back("rng.pt", rng_bytes());
  const std::string name = checkpoint_name(step);
  write_folder(ckdir / name, files);
  write_file_atomic(ckdir / "latest", name + "\n");

  prune_checkpoints(ckdir, name, cfg.train.keep_checkpoints);
  for (auto& e : fs::directory_iterator(ckdir)) {  // leftovers of killed writers
    const std::string n = e.path().filename().string();
    if (n.rfind(".tmp-", 0) == 0 && n.find("." + std::to_string(::getpid())) == std::string::npos)
      fs::remove_all(e.path());
  }
  return (ckdir / name).string();
}

void check_checkpoint_space(const std::string& run_dir, int64_t estimate_bytes) {
  const fs::path ckdir = fs::path(run_dir) / "checkpoints";
  int64_t one = estimate_bytes;
  std::string basis = "an estimated";
  auto folders = step_folders(ckdir);
  if (!folders.empty()) {
    one = tree_bytes(folders.front().second);
    basis = "the last (" + folders.front().second.filename().string() + ") is";
  }
  const int64_t need = 2 * one, avail = free_bytes(ckdir);
  if (avail < 0 || avail >= need) return;
  throw UsageError("not enough free disk space for checkpoints in '" + ckdir.string() + "': " + basis + " " +
                   human_bytes(one) + " per checkpoint, so " + human_bytes(need) + " are needed and " +
                   human_bytes(avail) + " are free; free space or choose a run.dir on another disk");
}

void verify_checkpoint(const std::string& dir) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) throw std::runtime_error("not a folder");
  if (!fs::exists(d / "MANIFEST.json")) throw std::runtime_error("no MANIFEST.json (incomplete)");
  json m;
  try {
    m = json::parse(read_file(d / "MANIFEST.json"));
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("MANIFEST.json does not parse: ") + e.what());
  }
  if (m.value("magic", "") != kCheckpointMagic) throw std::runtime_error("MANIFEST.json: not a codex-train checkpoint");
  if (m.value("format_version", -1) != kCheckpointVersion)
    throw std::runtime_error("MANIFEST.json: format version " + m.value("format_version", json(-1)).dump() +
                             ", this program reads " + std::to_string(kCheckpointVersion));
  for (auto& [name, info] : m.at("files").items()) {
    const fs::path p = d / name;
    if (!fs::exists(p)) throw std::runtime_error(name + " is missing");
    const std::string bytes = read_file(p);
    if (bytes.size() != info.at("bytes").get<size_t>())
      throw std::runtime_error(name + ": " + std::to_string(bytes.size()) + " bytes, manifest says " +
                               info.at("bytes").dump());
    if (hex64(fnv1a64(bytes.data(), bytes.size())) != info.at("fnv1a64").get<std::string>())
      throw std::runtime_error(name + ": checksum mismatch");
  }
}

std::optional<std::string> find_resume_checkpoint(const std::string& run_dir) {
  const fs::path ckdir = fs::path(run_dir) / "checkpoints";
  std::vector<fs::path> order;
  if (fs::exists(ckdir / "latest")) {
    std::string n = read_file(ckdir / "latest");
    n.erase(n.find_last_not_of(" \n\r\t") + 1);
    if (!n.empty()) order.push_back(ckdir / n);
  }
  for (auto& [s, p] : step_folders(ckdir))
    if (std::find(order.begin(), order.end(), p) == order.end()) order.push_back(p);
  if (order.empty()) return std::nullopt;
  for (auto& p : order) {
    try {
      verify_checkpoint(p.string());
      return p.string();
    } catch (const std::exception& e) {
      spdlog::warn("checkpoint {} is unusable ({}); trying the previous one", p.string(), e.what());
    }
  }
  throw UsageError(ckdir.string() + " holds checkpoints but none is valid (see warnings above)");
}

json read_checkpoint_state(const std::string& dir) { return json::parse(read_file(fs::path(dir) / "state.json")); }

void load_weights(const std::string& dir, GPT& model, LoadMode mode, const std::string& module) {
  const fs::path file = fs::path(dir) / module_file(module, "weights");
  if (!fs::exists(file)) throw UsageError("checkpoint " + dir + " holds no module '" + module + "'");
  auto d = read_pickled_dict(file);
  auto params = model->named_parameters();
  auto skipped = [&](const std::string& name) { return mode == LoadMode::trunk && is_head_parameter(name); };
  std::vector<std::string> diffs;
  for (auto& kv : params) {
    if (skipped(kv.key())) continue;
    if (!d.contains(kv.key())) {
      diffs.push_back(kv.key() + " (missing from checkpoint)");
      continue;
    }
    auto t = d.at(kv.key()).toTensor();
    if (t.sizes() != kv.value().sizes()) {
      std::ostringstream os;
      os << kv.key() << " (checkpoint " << t.sizes() << ", model " << kv.value().sizes() << ")";
      diffs.push_back(os.str());
    }
  }
  for (auto& e : d)
    if (!skipped(e.key().toStringRef()) && !params.contains(e.key().toStringRef()))
      diffs.push_back(e.key().toStringRef() + " (not in model)");
  if (!diffs.empty()) {
    std::string msg = "checkpoint " + dir + " does not match the model shape: ";
    for (size_t i = 0; i < diffs.size() && i < 8; ++i) msg += (i ? "; " : "") + diffs[i];
    if (diffs.size() > 8) msg += "; and " + std::to_string(diffs.size() - 8) + " more";
    throw UsageError(msg);
  }
  torch::NoGradGuard ng;
  for (auto& kv : params)
    if (!skipped(kv.key())) kv.value().copy_(d.at(kv.key()).toTensor());
}

std::vector<std::string> checkpoint_heads(const std::string& dir, const std::string& module) {
  const json st = read_checkpoint_state(dir);
  const json* m = &st;
  if (module != "model") {
    if (!st.contains("modules") || !st["modules"].contains(module))
      throw UsageError("checkpoint " + dir + " holds no module '" + module + "'");
    m = &st["modules"][module];
  }
  if (!m->contains("heads")) return {"lm"};  // written before heads existed: an LM
  return m->at("heads").get<std::vector<std::string>>();
}

void load_optimizer(const std::string& dir, torch::optim::Optimizer& opt, const std::string& module) {
  const fs::path d(dir);
  const std::string name = module_file(module, "optim");
  if (!fs::exists(d / name))
    throw UsageError("checkpoint " + dir + " holds no optimizer state for '" + module + "' (weights only); use it as an init, not to resume");
  {
    const std::string bytes = read_file(d / name);
    std::istringstream is(bytes);
    torch::serialize::InputArchive ar;
    ar.load_from(is);
    opt.load(ar);
  }
  // The archive restores tensors on the CPU; move AdamW moments next to their parameters (CUDA runs).
  for (auto& g : opt.param_groups())
    for (auto& p : g.params()) {
      auto it = opt.state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
      if (it == opt.state().end()) continue;
      if (auto* st = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get())) {
        st->exp_avg(st->exp_avg().to(p.device()));
        st->exp_avg_sq(st->exp_avg_sq().to(p.device()));
        if (st->max_exp_avg_sq().defined()) st->max_exp_avg_sq(st->max_exp_avg_sq().to(p.device()));
      }
    }
}

void load_rng(const std::string& dir) {
  auto rng = read_pickled_dict(fs::path(dir) / "rng.pt");
  for (auto& e : rng) {
    const std::string key = e.key().toStringRef();
    auto state = e.value().toTensor();
    if (key == "cpu") {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state);
    } else if (key.rfind("cuda:", 0) == 0 && torch::cuda::is_available()) {
      auto i = static_cast<c10::DeviceIndex>(std::stoi(key.substr(5)));
      if (i < static_cast<int>(torch::cuda::device_count())) {
        auto gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, i));
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_state(state);
      }
    }
  }
}

void load_optimizer_and_rng(const std::string& dir, torch::optim::Optimizer& opt) {
  load_optimizer(dir, opt, "model");
  load_rng(dir);
}

void freeze(GPT& model) {
  for (auto& p : model->parameters()) p.requires_grad_(false);
  model->eval();
}

std::string resolve_checkpoint(const std::string& dir) {
  fs::path d(dir);
  std::string ck;
  if (!fs::exists(d)) throw UsageError("'" + dir + "': does not exist");
  d = fs::weakly_canonical(fs::absolute(d));  // ".", "../step_N", "latest" from inside checkpoints/
  // <run>/checkpoints/latest (a file naming the newest checkpoint) stands for its run.
  if (fs::is_regular_file(d) && d.filename() == "latest" && d.parent_path().filename() == "checkpoints")
    d = d.parent_path().parent_path();
  if (fs::exists(d / "MANIFEST.json")) {
    ck = d.string();
  } else if (fs::is_directory(d / "checkpoints")) {
    auto found = find_resume_checkpoint(d.string());
    if (!found) throw UsageError("'" + dir + "': the run has no checkpoint yet");
    ck = *found;
  } else {
    throw UsageError("'" + dir + "': not a checkpoint folder (no MANIFEST.json), a run dir (no checkpoints/) "
                     "nor a checkpoints/latest file");
  }
  try {
    verify_checkpoint(ck);
  } catch (const std::exception& e) {
    throw UsageError("checkpoint '" + ck + "': " + e.what());
  }
  return ck;
}

LoadedModel load_model(const std::string& dir, torch::Device device) {
  const std::string ck = resolve_checkpoint(dir);
  LoadedModel lm;
  const json st = read_checkpoint_state(ck);
  lm.gpt = gpt_from_json(st.at("gpt"));
  lm.step = st.value("step", int64_t{0});
  lm.config = load_config((fs::path(ck) / "config.yaml").string(), {});
  lm.dir = ck;
  lm.tokenizer_path = tokenizer_file_in(ck);
  lm.model = GPT(lm.gpt);
  for (auto& h : checkpoint_heads(ck))
    if (h != "lm") lm.model->add_scalar_head(h);
  load_weights(ck, lm.model);
  lm.model->to(device);
  lm.model->eval();
  return lm;
}

}  // namespace codex
