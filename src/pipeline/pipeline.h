#pragma once
// `codex-train pipeline`: every stage of the Codex pipeline end to end, resumable, in one folder:
//   O/01-tokenizer  O/02-data  O/03-pretrain (M0)  O/04-problems  O/05-sft (M1)  O/06-prefs
//   O/07-reward  O/08-ppo (M2)  O/09-eval  + O/summary.json, O/report.html, O/pipeline.json
// Each stage folder holds stage.json (its fingerprint: resolved config + inputs) and, when
// finished, DONE (its summary JSON). Rerunning skips finished stages whose fingerprint is
// unchanged, resumes an interrupted one, and moves a changed stage and every later one aside to
// O/.invalidated/ (nothing is deleted) before redoing them.
#include <map>
#include "config/config.h"
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace codex {

struct PipelineArgs {
  std::vector<std::string> corpus;  // directories, .py files, JSONL(.gz) with text / content
  std::string demos, prefs, output_dir, config_path;
  std::vector<std::string> overrides;  // dotted; "<stage>.<section>.<key>=v" reaches one stage
  std::string command_line;            // for pipeline.json / the report
  bool force = false;                  // --force: use a non-empty --output-dir that is not a pipeline run
};

// The resolved config of every stage ("pretrain", "sft", "reward", "ppo", "eval", ...) from a
// pipeline config file and overrides; UsageError on an unknown key or a bad value.
std::map<std::string, Config> pipeline_stage_configs(const std::string& file,
                                                            const std::vector<std::string>& overrides);

// Runs (or resumes) the pipeline; returns O/summary.json's content.
nlohmann::json run_pipeline(const PipelineArgs& args);

}  // namespace codex
