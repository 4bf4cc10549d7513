#include "rl/prefs.h"

#include <algorithm>
#include <iostream>
#include <tuple>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "config/device.h"
#include "eval/sampling.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {

using json = nlohmann::json;

std::vector<std::pair<size_t, size_t>> pair_by_outcome(const std::vector<rl::Outcome>& outcomes,
                                                       const std::vector<std::string>& texts, int64_t max_pairs) {
  std::vector<std::tuple<int, int, size_t, size_t>> all;
  for (size_t i = 0; i < outcomes.size(); ++i)
    for (size_t j = 0; j < outcomes.size(); ++j)
      if (static_cast<int>(outcomes[i]) < static_cast<int>(outcomes[j]) && texts[i] != texts[j])
        all.emplace_back(static_cast<int>(outcomes[i]), -static_cast<int>(outcomes[j]), i, j);
  std::sort(all.begin(), all.end());
  std::vector<std::pair<size_t, size_t>> out;
  for (auto& [a, b, i, j] : all) {
    if (static_cast<int64_t>(out.size()) >= max_pairs) break;
    out.emplace_back(i, j);
  }
  return out;
}

json prefs_from_execution(GPT& model, const Tokenizer& tok, const std::vector<eval::Problem>& problems,
                          const eval::Sandbox& sandbox, int64_t n, int64_t max_pairs, double temperature,
                          int64_t max_new_tokens, uint64_t seed, const Config& cfg, const std::string& out_path) {
  std::vector<eval::Problem> tested;
  for (auto& p : problems)
    if (!p.test.empty()) tested.push_back(p);
  if (tested.empty()) throw UsageError("prefs from-execution: no problem has a test to run");
  auto samples = sample_problems(model, tok, tested, n, cfg.generate, {temperature, 1.0, max_new_tokens, seed, false});
  std::vector<eval::Problem> of;
  std::vector<std::string> completions;
  for (auto& s : samples) {
    of.push_back(tested[s.prompt_index]);
    completions.push_back(s.text);
  }
  const std::vector<rl::Outcome> graded = rl::grade_completions(sandbox, of, completions);
  json counts = {{"problems", tested.size()}, {"samples", samples.size()}, {"passed", 0}, {"wrong", 0},
                 {"error", 0}, {"syntax", 0}, {"pairs", 0}, {"problems_with_pairs", 0}};
  std::string text;
  for (size_t p = 0; p < tested.size(); ++p) {
    std::vector<rl::Outcome> oc;
    std::vector<std::string> texts;
    for (int64_t i = 0; i < n; ++i) {
      const size_t at = p * static_cast<size_t>(n) + static_cast<size_t>(i);
      oc.push_back(graded[at]);
      texts.push_back(samples[at].text);
      counts[rl::outcome_name(oc.back())] = counts[rl::outcome_name(oc.back())].get<int64_t>() + 1;
    }
    auto pairs = pair_by_outcome(oc, texts, max_pairs);
    if (!pairs.empty()) counts["problems_with_pairs"] = counts["problems_with_pairs"].get<int64_t>() + 1;
    for (auto& [i, j] : pairs) {
      text += json{{"prompt", tested[p].prompt}, {"chosen", texts[i]}, {"rejected", texts[j]},
                   {"task_id", tested[p].task_id}, {"chosen_outcome", rl::outcome_name(oc[i])},
                   {"rejected_outcome", rl::outcome_name(oc[j])}}
                  .dump(-1, ' ', false, json::error_handler_t::replace) +
              "\n";
      counts["pairs"] = counts["pairs"].get<int64_t>() + 1;
    }
  }
  write_file_atomic(out_path, text);
  return counts;
}

namespace {

int run_prefs(cli::Invocation& inv) {
  Config cfg = inv.config();
  configure_threads(cfg.run.threads);
  const std::string out = inv.require("out");
  if (fs::is_directory(out)) throw UsageError("--out '" + out + "' is a folder; expected a file name");
  check_overwrite(out, "prefs from-execution: --out", cfg.overwrite);
  check_can_write(out, "prefs from-execution: --out");  // before any sample runs
  auto problems = eval::load_problems(inv.require("problems"));
  eval::Sandbox sandbox(eval::sandbox_options(cfg));
  LoadedModel lm = load_model(inv.require("checkpoint"), pick_device(cfg.run));
  if (lm.tokenizer_path.empty()) throw UsageError(lm.dir + ": checkpoint has no tokenizer");
  Tokenizer tok(lm.tokenizer_path);
  json c = prefs_from_execution(lm.model, tok, problems, sandbox, inv.get_int("n", 8), inv.get_int("max-pairs", 4),
                                inv.get_double("temperature", 0.8), cfg.eval.max_new_tokens,
                                static_cast<uint64_t>(cfg.run.seed), cfg, out);
  std::cout << c.dump() << std::endl;
  return 0;
}

cli::Registrar reg({"prefs", "from-execution",
                    "preference pairs from unit tests: sample, run in the sandbox, pair passing with failing",
                    {{"checkpoint", true, "the model to sample from"},
                     {"problems", true, "problems JSONL with tests"},
                     {"n", true, "samples per problem (default 8)"},
                     {"max-pairs", true, "pairs per problem at most (default 4)"},
                     {"temperature", true, "sampling temperature (default 0.8)"},
                     {"max-new-tokens", true, "completion length limit", "eval.max_new_tokens"},
                     {"seed", true, "sample i of problem p uses seed + p*n + i", "run.seed"},
                     {"out", true, "the preferences file to write"},
                     cli::kForceFlag},
                    false, run_prefs, {"run.", "eval.", "generate.", "overwrite"}});

}  // namespace
}  // namespace codex
