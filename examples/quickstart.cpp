// The seeds' quickstart: a three-line corpus, one demonstration, one preference, tiny configs.
//   pretrain (M0) -> sft (M1) -> reward model -> rlhf_ppo (M2)
// usage: quickstart [WORK_DIR]   (run folders go under WORK_DIR; default: fresh temporary folders)
#include <codex/codex.h>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  const std::string work = argc > 1 ? argv[1] : "";
  auto dir = [&](const std::string& name) { return work.empty() ? std::string() : work + "/" + name; };
  // Tiny model and batches: this runs in seconds on one CPU core.
  const std::map<std::string, std::string> tiny = {{"model.n_layer", "1"}, {"model.n_head", "2"},
                                                   {"model.n_embd", "32"}, {"train.batch_size", "4"},
                                                   {"train.log_every", "10"}, {"run.threads", "1"}};
  const std::vector<std::string> corpus = {"def add(a, b): return a + b",
                                           "def sub(a, b): return a - b",
                                           "def mul(a, b): return a * b"};
  const std::vector<codex::Demo> demos = {{"def add(a, b):", " return a + b"}};
  const std::vector<codex::Preference> prefs = {{"def add(a, b):", " return a + b", " return a - b"}};
  try {
    codex::ModelHandle m0 = codex::pretrain(corpus, {60, 3e-3, 0, dir("m0"), tiny});
    m0.disallowed = {"import os"};
    std::cout << "M0 weights: " << m0.weights.dir << "\n";
    std::cout << "M0 tokens of 'def add': " << codex::tokenize("def add", m0).size() << "\n";
    std::cout << "M0 completion of 'def add(a, b):': " << m0.generate("def add(a, b):", 16) << "\n";
    if (!work.empty()) {
      m0.save(dir("m0-saved"));
      std::cout << "M0 saved: " << dir("m0-saved") << "\n";
    }
    codex::ModelHandle m1 = codex::sft(m0, demos, {2, 1e-3, 0, dir("m1"), tiny});
    std::cout << "M1 completion: " << m1.generate("def add(a, b):", 16) << "\n";
    // The reward trunk starts from the last model sft() returned (M1); overrides["reward.init"]
    // would choose another.
    codex::RewardModelHandle rm = codex::train_reward_model(prefs, {3, 1e-3, 0, dir("rm"), tiny});
    std::cout << "RM score(chosen) - score(rejected): "
              << rm.score(prefs[0].prompt, prefs[0].chosen) - rm.score(prefs[0].prompt, prefs[0].rejected) << "\n";
    codex::RLHFCfg pcfg{4, 1e-4, 0.1, 0, dir("m2"), tiny};
    pcfg.overrides["ppo.rollout.prompts_per_step"] = "1";  // one prompt: the one preference's
    pcfg.overrides["ppo.rollout.samples_per_prompt"] = "2";
    pcfg.overrides["ppo.rollout.max_new_tokens"] = "8";  // three lines give the model a short context
    codex::ModelHandle m2 = codex::rlhf_ppo(m1, rm, pcfg);
    std::cout << "M2 completion: " << m2.generate("def add(a, b):", 16) << "\n";
  } catch (const codex::Error& e) {
    std::cerr << "quickstart: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
