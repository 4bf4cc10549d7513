// `codex-train data practice --out DIR [--seed S] [--extra N] [--force]`: writes DIR/train.jsonl,
// DIR/heldout.jsonl, DIR/rl.jsonl (problems; rl empty without --extra), DIR/demos.jsonl (train as
// {prompt, completion}) and DIR/stats.json.
#include "data/practice.h"

#include <functional>
#include <iostream>
#include <random>

#include "cli/registry.h"
#include "util/error.h"
#include "util/fs.h"

namespace codex {

namespace {

using json = nlohmann::json;

std::string py_list(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}
std::string py_str(const std::string& s) { return "'" + s + "'"; }  // our words need no escaping
std::string py_bool(bool b) { return b ? "True" : "False"; }

const char* const kWords[] = {"ab", "cat", "dog", "sun", "red", "blue", "tree", "fox", "owl", "sea",
                              "map", "key", "box", "cup", "pen", "hat", "log", "net", "oak", "ice",
                              "jam", "kit", "lid", "mud", "nut", "orb", "pig", "rug", "sky"};

// One family: its name and, for a parameter k and inputs drawn from rng, the pieces of a problem.
struct Family {
  std::string name, args, doc;  // doc: the docstring with {k} already substituted by make()
  std::function<void(int64_t k, std::mt19937_64& rng, Problem& p, std::vector<std::pair<std::string, std::string>>& io)>
      make;
};

std::vector<Family> families() {
  std::vector<Family> f;
  auto ints = [](std::mt19937_64& rng, int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
  };
  auto list = [&](std::mt19937_64& rng) {
    std::vector<int64_t> v(3 + rng() % 3);
    for (auto& x : v) x = ints(rng, 0, 40);
    return v;
  };
  f.push_back({"add", "x", "Return x plus {k}.", [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 p.canonical_solution = "    return x + " + std::to_string(k) + "\n";
                 for (int i = 0; i < 3; ++i) {
                   int64_t x = ints(rng, -20, 50);
                   io.emplace_back(std::to_string(x), std::to_string(x + k));
                 }
               }});
  f.push_back({"times", "x", "Return x multiplied by {k}.", [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 p.canonical_solution = "    return x * " + std::to_string(k) + "\n";
                 for (int i = 0; i < 3; ++i) {
                   int64_t x = ints(rng, -9, 30);
                   io.emplace_back(std::to_string(x), std::to_string(x * k));
                 }
               }});
  f.push_back({"minus", "x", "Return x minus {k}.", [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 p.canonical_solution = "    return x - " + std::to_string(k) + "\n";
                 for (int i = 0; i < 3; ++i) {
                   int64_t x = ints(rng, -20, 60);
                   io.emplace_back(std::to_string(x), std::to_string(x - k));
                 }
               }});
  f.push_back({"mod", "x", "Return the remainder of x divided by {k}.", [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 p.canonical_solution = "    return x % " + std::to_string(k) + "\n";
                 for (int i = 0; i < 3; ++i) {
                   int64_t x = ints(rng, 0, 200);  // non-negative: Python's % and C++'s agree
                   io.emplace_back(std::to_string(x), std::to_string(x % k));
                 }
               }});
  f.push_back({"scale", "xs", "Return a list with every element of xs multiplied by {k}.",
               [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 p.canonical_solution = "    return [x * " + std::to_string(k) + " for x in xs]\n";
                 for (int i = 0; i < 3; ++i) {
                   auto v = list(rng), w = v;
                   for (auto& x : w) x *= k;
                   io.emplace_back(py_list(v), py_list(w));
                 }
               }});
  f.push_back({"above", "xs", "Return the elements of xs greater than {k}.",
               [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 p.canonical_solution = "    return [x for x in xs if x > " + std::to_string(k) + "]\n";
                 for (int i = 0; i < 3; ++i) {
                   auto v = list(rng);
                   std::vector<int64_t> w;
                   for (auto x : v)
                     if (x > k) w.push_back(x);
                   io.emplace_back(py_list(v), py_list(w));
                 }
               }});
  f.push_back({"shift", "xs", "Return a list with {k} added to every element of xs.",
               [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 p.canonical_solution = "    return [x + " + std::to_string(k) + " for x in xs]\n";
                 for (int i = 0; i < 3; ++i) {
                   auto v = list(rng), w = v;
                   for (auto& x : w) x += k;
                   io.emplace_back(py_list(v), py_list(w));
                 }
               }});
  f.push_back({"is_above", "x", "Return True when x is greater than {k}, else False.",
               [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 p.canonical_solution = "    return x > " + std::to_string(k) + "\n";
                 io.emplace_back(std::to_string(k + 1), py_bool(true));
                 io.emplace_back(std::to_string(k), py_bool(false));
                 int64_t x = ints(rng, -5, 40);
                 io.emplace_back(std::to_string(x), py_bool(x > k));
               }});
  f.push_back({"repeat", "s", "Return the string s repeated {k} times.", [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 p.canonical_solution = "    return s * " + std::to_string(k) + "\n";
                 for (int i = 0; i < 3; ++i) {
                   std::string w = kWords[rng() % 29], r;
                   for (int64_t j = 0; j < k; ++j) r += w;
                   io.emplace_back(py_str(w), py_str(r));
                 }
               }});
  f.push_back({"suffix", "s", "Return the string s followed by '{w}'.", [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 const std::string w = kWords[k % 29];
                 p.canonical_solution = "    return s + '" + w + "'\n";
                 for (int i = 0; i < 3; ++i) {
                   std::string s = kWords[rng() % 29];
                   io.emplace_back(py_str(s), py_str(s + w));
                 }
               }});
  f.push_back({"count", "xs", "Return how many times {k} occurs in the list xs.",
               [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 p.canonical_solution = "    return xs.count(" + std::to_string(k) + ")\n";
                 for (int i = 0; i < 3; ++i) {
                   std::vector<int64_t> v(4 + rng() % 3);
                   int64_t c = 0;
                   for (auto& x : v) {
                     x = rng() % 2 ? k : ints(rng, 0, 40);
                     c += x == k;
                   }
                   io.emplace_back(py_list(v), std::to_string(c));
                 }
               }});
  f.push_back({"get", "d", "Return d['{w}'], or {k} when d has no key '{w}'.",
               [=](int64_t k, auto& rng, Problem& p, auto& io) {
                 const std::string w = kWords[k % 29];
                 p.canonical_solution = "    return d.get('" + w + "', " + std::to_string(k) + ")\n";
                 int64_t v = ints(rng, 0, 99);
                 io.emplace_back("{'" + w + "': " + std::to_string(v) + "}", std::to_string(v));
                 io.emplace_back("{}", std::to_string(k));
                 io.emplace_back("{'zz': 1}", std::to_string(k));
               }});
  return f;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) s.replace(at, from.size(), to);
  return s;
}

Problem make_problem(const Family& f, int64_t k, std::mt19937_64& rng) {
  Problem p;
  const std::string word = kWords[k % 29];
  const std::string name = f.name + "_" + (f.doc.find("{w}") != std::string::npos ? word : std::to_string(k));
  p.task_id = "Practice/" + name;
  p.entry_point = name;
  p.origin = "practice";
  p.source = "practice:" + f.name;
  std::vector<std::pair<std::string, std::string>> io;
  f.make(k, rng, p, io);
  const std::string doc = replace_all(replace_all(f.doc, "{k}", std::to_string(k)), "{w}", word);
  p.docstring = doc;
  p.prompt = "def " + name + "(" + f.args + "):\n    \"\"\"" + doc + "\n    >>> " + name + "(" + io[0].first +
             ")\n    " + io[0].second + "\n    \"\"\"\n";
  p.test = "def check(candidate):\n";
  for (auto& [in, want] : io) p.test += "    assert candidate(" + in + ") == " + want + "\n";
  return p;
}

}  // namespace

PracticeSet make_practice_set(uint64_t seed, int64_t extra, bool rl_split) {
  PracticeSet out;
  auto fams = families();
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 12345);
  for (size_t fi = 0; fi < fams.size(); ++fi)
    for (int64_t k = 2; k <= 30; ++k) {
      Problem p = make_problem(fams[fi], k, rng);
      const int64_t r = (static_cast<int64_t>(fi) + k) % 5;
      (r == 0 ? out.heldout : rl_split && r == 1 ? out.rl : out.train).push_back(std::move(p));
    }
  // Train order shuffled (Fisher-Yates on the seeded generator); held-out kept in family order.
  for (size_t i = out.train.size() - 1; i > 0; --i) std::swap(out.train[i], out.train[rng() % (i + 1)]);
  // The RL instances draw from their own generator: train and held-out stay as without them.
  std::mt19937_64 rl_rng(seed * 0x9E3779B97F4A7C15ULL + 54321);
  for (const Family& f : fams)  // not the word families (a held-out word again), not repeat (long strings)
    if (f.doc.find("{w}") == std::string::npos && f.name != "repeat")
      for (int64_t k = 31; k <= 30 + extra; ++k) out.rl.push_back(make_problem(f, k, rl_rng));
  for (size_t i = out.rl.size(); i > 1; --i) std::swap(out.rl[i - 1], out.rl[rl_rng() % i]);
  return out;
}

namespace {

int run_practice(cli::Invocation& inv) {
  const std::string out = inv.require("out");
  const fs::path dir(out);
  if (fs::exists(dir) && !fs::is_directory(dir)) throw UsageError("--out '" + out + "' is a file");
  check_overwrite(dir, "data practice: --out", inv.config().overwrite);
  const int64_t extra = inv.get_int("extra", 0);
  if (extra < 0 || extra > 1000) throw UsageError("--extra: expected 0..1000, got " + std::to_string(extra));
  PracticeSet ps = make_practice_set(static_cast<uint64_t>(inv.get_int("seed", 0)), extra, inv.has("rl-split"));
  StagedOutput stage(dir, StagedOutput::Kind::kDir);  // the four files appear together, or not at all
  const fs::path tmp = stage.path();
  write_problems((tmp / "train.jsonl").string(), ps.train);
  write_problems((tmp / "heldout.jsonl").string(), ps.heldout);
  write_problems((tmp / "rl.jsonl").string(), ps.rl);
  std::string demos;
  for (auto& p : ps.train) demos += json{{"prompt", p.prompt}, {"completion", p.canonical_solution}}.dump() + "\n";
  write_file_atomic(tmp / "demos.jsonl", demos);
  json stats = {{"train", ps.train.size()}, {"heldout", ps.heldout.size()}, {"rl", ps.rl.size()},
                {"families", families().size()}};
  write_file_atomic(tmp / "stats.json", stats.dump(2) + "\n");
  stage.commit();
  std::cout << stats.dump() << std::endl;
  return 0;
}

cli::Registrar reg({"data", "practice", "generated practice problems (train + held-out) where small models can move",
                    {{"out", true, "output folder"}, {"seed", true, "seed (default 0)"},
                     {"extra", true, "instances per numeric family for RL only, in rl.jsonl (default 0)"},
                     {"rl-split", false, "the pairs with (family + k) % 5 == 1 go to rl.jsonl instead of train"},
                     cli::kForceFlag},
                    false, run_practice, {"overwrite"}});

}  // namespace
}  // namespace codex
