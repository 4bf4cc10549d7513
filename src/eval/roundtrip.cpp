// `eval roundtrip --codex-d D --codex-s S --problems P`: Codex-D (sft.task=docstring) writes a
// docstring for each canonical solution, Codex-S writes code from the signature + that docstring,
// the tests judge it; reported next to S's pass@k from the original docstrings.
#include <iostream>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "config/device.h"
#include "data/jsonl.h"
#include "eval/evaluate.h"
#include "eval/humaneval.h"
#include "generate/generate.h"
#include "tokenizer/tokenizer.h"
#include "train/sft.h"
#include "util/error.h"
#include "util/fs.h"

namespace codex {

using json = nlohmann::json;

namespace {

int run_roundtrip(cli::Invocation& inv) {
  Config cfg = inv.config();
  configure_threads(cfg.run.threads);
  const torch::Device dev = pick_device(cfg.run);
  std::vector<eval::Problem> originals, roundtrip;
  std::vector<Problem> usable;
  for (auto& p : read_problems(inv.require("problems")))
    if (!p.test.empty() && !p.canonical_solution.empty() && !docstring_task(p).first.empty()) usable.push_back(p);
  if (usable.empty()) throw UsageError("eval roundtrip: no problem has a docstring, a solution and a test");
  if (cfg.eval.limit > 0 && static_cast<size_t>(cfg.eval.limit) < usable.size()) usable.resize(cfg.eval.limit);
  eval::Sandbox sandbox(eval::sandbox_options(cfg));
  LoadedModel d = load_model(inv.require("codex-d"), dev), s = load_model(inv.require("codex-s"), dev);
  if (d.tokenizer_path.empty() || s.tokenizer_path.empty()) throw UsageError("eval roundtrip: a checkpoint has no tokenizer");
  Tokenizer dtok(d.tokenizer_path), stok(s.tokenizer_path);
  std::vector<std::string> dprompts;
  for (auto& p : usable) dprompts.push_back(docstring_task(p).first);
  SamplingOptions so = SamplingOptions::from(cfg.generate, static_cast<uint64_t>(cfg.run.seed));
  so.temperature = 0;  // one docstring per solution, greedy
  so.stop = {"\"\"\""};
  so.max_new_tokens = cfg.eval.max_new_tokens;
  auto docs = generate(d.model, dtok, dprompts, 1, so);
  for (size_t i = 0; i < usable.size(); ++i) {
    const Problem& p = usable[i];
    originals.push_back({p.task_id, p.prompt, p.canonical_solution, p.test, p.entry_point});
    std::string prompt = with_docstring(p, docs[i].text);
    roundtrip.push_back({p.task_id, prompt.empty() ? p.prompt : prompt, p.canonical_solution, p.test, p.entry_point});
  }
  EvalSpec spec = EvalSpec::from(cfg);
  const fs::path out = inv.has("out") ? fs::path(inv.get("out")) : fs::path(s.dir).parent_path().parent_path() / "roundtrip";
  spec.out_dir = out.string();
  spec.tag = "original";
  json a = evaluate_problems(s.model, stok, originals, sandbox, spec, cfg);
  spec.tag = "roundtrip";
  json b = evaluate_problems(s.model, stok, roundtrip, sandbox, spec, cfg);
  json result = {{"problems", usable.size()}};
  for (auto& [k, v] : a.items())
    if (k.rfind("pass@", 0) == 0) result[k] = v;
  for (auto& [k, v] : b.items())
    if (k.rfind("pass@", 0) == 0) result["roundtrip_" + k] = v;
  std::cout << result.dump() << std::endl;
  return 0;
}

cli::Registrar roundtrip_reg(
    {"eval", "roundtrip", "Codex-D writes docstrings, Codex-S writes code from them: round-trip pass@k (ONE JSON line)",
     {{"codex-d", true, "the Codex-D checkpoint (sft.task=docstring)"},
      {"codex-s", true, "the Codex-S checkpoint"},
      {"problems", true, "problems JSONL with docstrings, solutions and tests"},
      {"n", true, "samples per problem", "eval.n"},
      {"temperature", true, "sampling temperature of Codex-S", "eval.temperature"},
      {"k", true, "pass@k values", "eval.k"},
      {"limit", true, "only the first N usable problems", "eval.limit"},
      {"max-new-tokens", true, "length limit", "eval.max_new_tokens"},
      {"out", true, "output folder (default <codex-s run>/roundtrip)"}},
     false, run_roundtrip});

}  // namespace
}  // namespace codex
