#include "rl/rewards.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "eval/humaneval.h"
#include "util/error.h"

namespace codex::rl {

namespace {
constexpr const char* kTag = "CODEX-OUTCOME:";
}

std::string graded_program(const std::string& program) {
  // The program travels as a JSON string literal: JSON's escapes (\" \\ \n \t \uXXXX for control
  // characters) are Python's too. Non-ASCII text stays UTF-8 as written (Python reads source as
  // UTF-8): with ASCII escapes a character above U+FFFF would become two surrogate escapes, which
  // compile() refuses, and a correct program would be graded "does not parse".
  const std::string lit = nlohmann::json(program).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return "__codex_src = " + lit + "\n"
         "try:\n"
         "    __codex_code = compile(__codex_src, '<string>', 'exec')\n"
         "except BaseException:\n"
         "    raise RuntimeError('" + std::string(kTag) + "syntax') from None\n"
         "try:\n"
         "    exec(__codex_code, {'__name__': '__main__'})\n"
         "except AssertionError:\n"
         "    raise RuntimeError('" + std::string(kTag) + "wrong') from None\n"
         "except BaseException:\n"
         "    raise RuntimeError('" + std::string(kTag) + "error') from None\n";
}

std::string partial_graded_program(const std::string& program) {
  const std::string lit = nlohmann::json(program).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string tag = kTag;
  // Names inside the class body start with one underscore: Python mangles "__x" there.
  return "_codex_src = " + lit + "\n"
         "import ast as _codex_ast\n"
         "try:\n"
         "    _codex_tree = _codex_ast.parse(_codex_src)\n"
         "    compile(_codex_src, '<string>', 'exec')\n"
         "except BaseException:\n"
         "    raise RuntimeError('" + tag + "syntax') from None\n"
         "_codex_n = [0, 0]\n"
         "class _CodexAsserts(_codex_ast.NodeTransformer):\n"
         "    def visit_Assert(self, node):\n"
         "        guard = _codex_ast.parse('try:\\n    _codex_n[1] += 1\\n    pass\\n    _codex_n[0] += 1\\n'\n"
         "                                 'except Exception:\\n    pass\\n').body[0]\n"
         "        guard.body[1] = node\n"
         "        return _codex_ast.copy_location(guard, node)\n"
         "for _codex_f in _codex_tree.body:\n"
         "    if isinstance(_codex_f, _codex_ast.FunctionDef) and _codex_f.name == 'check':\n"
         "        _CodexAsserts().visit(_codex_f)\n"
         "_codex_code = compile(_codex_ast.fix_missing_locations(_codex_tree), '<string>', 'exec')\n"
         "try:\n"
         "    exec(_codex_code, {'__name__': '__main__', '_codex_n': _codex_n})\n"
         "except BaseException:\n"
         "    raise RuntimeError('" + tag + "error:%d/%d' % (_codex_n[0], _codex_n[1])) from None\n"
         "if _codex_n[1] == 0 or _codex_n[0] < _codex_n[1]:\n"
         "    raise RuntimeError('" + tag + "wrong:%d/%d' % (_codex_n[0], _codex_n[1]))\n";
}

Grade grade_of(const eval::ProgramResult& r) {
  Grade g;
  g.outcome = outcome_of(r);
  if (g.outcome == Outcome::passed) {
    g.share = 1;
    return g;
  }
  const auto at = r.result.find(kTag);
  if (at == std::string::npos) return g;
  const std::string what = r.result.substr(at + std::string(kTag).size());
  const auto colon = what.find(':'), slash = what.find('/');
  if (colon == std::string::npos || slash == std::string::npos || slash < colon) return g;
  try {
    const double ok = std::stod(what.substr(colon + 1, slash - colon - 1)), ran = std::stod(what.substr(slash + 1));
    if (ran > 0 && ok >= 0 && ok <= ran) g.share = ok / ran;
  } catch (const std::exception&) {  // not our tag's numbers: no credit
  }
  return g;
}

std::vector<Grade> grade_completions_partial(const eval::Sandbox& sandbox, const std::vector<eval::Problem>& problems,
                                             const std::vector<std::string>& completions) {
  if (problems.size() != completions.size())
    throw std::logic_error("grade_completions_partial: one problem per completion");
  std::vector<std::string> programs;
  programs.reserve(completions.size());
  for (size_t i = 0; i < completions.size(); ++i)
    programs.push_back(partial_graded_program(eval::check_program(problems[i], completions[i])));
  std::vector<Grade> out;
  for (auto& r : sandbox.run_programs(programs)) out.push_back(grade_of(r));
  return out;
}

double partial_execution_reward(const Grade& g) {
  if (g.outcome == Outcome::wrong) return -0.3 + 0.6 * g.share;
  return execution_reward(g.outcome);
}

Outcome outcome_of(const eval::ProgramResult& r) {
  if (r.passed) return Outcome::passed;
  const auto at = r.result.find(kTag);
  if (at != std::string::npos) {
    const std::string what = r.result.substr(at + std::string(kTag).size());
    if (what.rfind("wrong", 0) == 0) return Outcome::wrong;
    if (what.rfind("syntax", 0) == 0) return Outcome::syntax;
  }
  return Outcome::error;
}

std::vector<Outcome> grade_completions(const eval::Sandbox& sandbox, const std::vector<eval::Problem>& problems,
                                       const std::vector<std::string>& completions) {
  if (problems.size() != completions.size()) throw std::logic_error("grade_completions: one problem per completion");
  std::vector<std::string> programs;
  programs.reserve(completions.size());
  for (size_t i = 0; i < completions.size(); ++i)
    programs.push_back(graded_program(eval::check_program(problems[i], completions[i])));
  auto res = sandbox.run_programs(programs);
  std::vector<Outcome> out;
  out.reserve(res.size());
  for (auto& r : res) out.push_back(outcome_of(r));
  return out;
}

double execution_reward(Outcome o) {
  switch (o) {
    case Outcome::passed: return 1.0;
    case Outcome::wrong: return -0.3;
    case Outcome::error: return -0.6;
    case Outcome::syntax: return -1.0;
  }
  return -1.0;
}

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::passed: return "passed";
    case Outcome::wrong: return "wrong";
    case Outcome::error: return "error";
    case Outcome::syntax: return "syntax";
  }
  return "?";
}

SafetyRules::SafetyRules(const std::vector<std::string>& patterns) {
  for (auto& p : patterns) {
    if (p.empty()) throw UsageError("ppo.safety.patterns: an empty pattern matches everywhere");
    try {
      rules_.emplace_back(p, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw UsageError("ppo.safety.patterns: '" + p + "' is not a valid regular expression (" + e.what() + ")");
    }
  }
}

int64_t SafetyRules::violations(const std::string& text) const {
  int64_t n = 0;
  for (auto& re : rules_) n += std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator());
  return n;
}

}  // namespace codex::rl
