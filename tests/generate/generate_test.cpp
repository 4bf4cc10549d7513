// Generation against independent references: hand-made distributions and vocabularies (filters,
// stop sequences, disallowed strings, seeds) and the plain full forward of a random tiny GPT
// (greedy, KV cache, left padding).
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <set>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "generate/generate.h"
#include "helpers.h"
#include "tokenizer/tokenizer.h"

using namespace codex;

namespace {

// The number of real (unpadded) tokens of row b.
int64_t real_len(const torch::Tensor& idx, const torch::Tensor& mask, int64_t b) {
  return mask.defined() ? mask[b].sum().item<int64_t>() : idx.size(1);
}

// A fake LM (use with kv_cache=false: it sees whole sequences) that follows a script: after the
// prompt it strongly prefers script[k] as the k-th new token.
LogitsFn scripted(int64_t V, int64_t prompt_len, std::vector<int64_t> script) {
  return [=](const torch::Tensor& idx, KVCache* cache, int64_t, const torch::Tensor& mask) {
    REQUIRE(cache == nullptr);
    auto out = torch::zeros({idx.size(0), V});
    for (int64_t b = 0; b < idx.size(0); ++b) {
      int64_t k = real_len(idx, mask, b) - prompt_len;
      out[b][script[std::min<int64_t>(k, (int64_t)script.size() - 1)]] = 20.0;
    }
    return out;
  };
}

TokenTable table(std::vector<std::string> bytes, int64_t eot, int64_t pad) {
  TokenTable t;
  t.bytes = std::move(bytes);
  t.eot_id = eot;
  t.pad_id = pad;
  return t;
}

std::vector<std::string> texts(const std::vector<Sample>& s) {
  std::vector<std::string> out;
  for (auto& x : s) out.push_back(x.text);
  return out;
}

}  // namespace

TEST_CASE("generate: top-k / top-p / temperature on a hand-made distribution", "[generate]") {
  // probabilities 0.1 0.5 0.05 0.2 0.15 (deliberately unsorted)
  std::vector<double> p = {0.1, 0.5, 0.05, 0.2, 0.15};
  auto logits = torch::log(torch::tensor(p, torch::kDouble)).to(torch::kFloat).unsqueeze(0);  // (1, 5)
  auto kept = [&](double T, int64_t k, double top_p) {
    auto f = filter_logits(logits, T, k, top_p)[0];
    std::vector<int> ids;
    for (int i = 0; i < 5; ++i)
      if (std::isfinite(f[i].item<float>())) ids.push_back(i);
    return ids;
  };
  CHECK(kept(1, 0, 1.0) == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(kept(1, 2, 1.0) == std::vector<int>{1, 3});
  CHECK(kept(1, 1, 1.0) == std::vector<int>{1});
  // nucleus: sorted 0.5 0.2 0.15 0.1 0.05; a token stays while the mass before it is < top_p
  CHECK(kept(1, 0, 0.6) == std::vector<int>{1, 3});
  CHECK(kept(1, 0, 0.8) == std::vector<int>{1, 3, 4});
  CHECK(kept(1, 0, 0.4) == std::vector<int>{1});
  CHECK(kept(1, 0, 1e-6) == std::vector<int>{1});
  // top-p after top-k renormalises over the k survivors: 0.5/0.85 + 0.2/0.85 = 0.82 > 0.75,
  // so the third drops (without renormalising the mass before it would be 0.7 < 0.75)
  CHECK(kept(1, 3, 0.75) == std::vector<int>{1, 3});
  CHECK(kept(1, 0, 0.75) == std::vector<int>{1, 3, 4});
  // temperature divides the logits; filtering uses the tempered distribution
  auto f = filter_logits(logits, 2.0, 0, 1.0)[0];
  CHECK(f[1].item<float>() == Approx(std::log(0.5) / 2).epsilon(1e-6));
  // T=0.5 sharpens: probs ~ p^2 -> 0.25 0.04 0.0225 0.01 0.0025 (sum 0.325): 0.25/0.325 = 0.77
  CHECK(filter_logits(logits, 0.5, 0, 0.7).isfinite().sum().item<int64_t>() == 1);
}

TEST_CASE("generate: sampling frequencies follow the filtered distribution", "[generate]") {
  std::vector<double> p = {0.1, 0.5, 0.05, 0.2, 0.15};
  auto row = torch::log(torch::tensor(p, torch::kDouble)).to(torch::kFloat);
  LogitsFn lm = [&](const torch::Tensor& idx, KVCache*, int64_t, const torch::Tensor&) {
    return row.unsqueeze(0).expand({idx.size(0), 5}).clone();
  };
  auto vocab = table({"a", "b", "c", "d", "e"}, -1, 99);
  SamplingOptions o;
  o.temperature = 1.0;
  o.top_k = 2;
  o.max_new_tokens = 1;
  o.batch_size = 500;
  o.seed = 3;
  const int n = 2000;
  auto s = generate_tokens(lm, vocab, {{0}}, n, o, 16);
  std::map<std::string, int> count;
  for (auto& x : s) count[x.text]++;
  CHECK(count.size() == 2);  // only b and d survive top-2
  double fb = count["b"] / double(n);
  CHECK(fb == Approx(0.5 / 0.7).margin(0.04));  // 4 sigma ~ 0.04
  // reported log-probs are under the unmodified distribution, not the top-2 renormalised one
  for (auto& x : s) CHECK(x.logprobs[0] == Approx(std::log(x.text == "b" ? 0.5 : 0.2)).margin(1e-5));
}

TEST_CASE("generate: creates_disallowed and the vocabulary filter agree with brute force", "[generate]") {
  std::vector<std::string> bad = {"os.system", "rm -rf"};
  CHECK(creates_disallowed("import os\nos.", "system(", bad));
  CHECK(creates_disallowed("", "x = os.system", bad));
  CHECK(creates_disallowed("rm -r", "f /", bad));
  CHECK_FALSE(creates_disallowed("os.sys", "tem_", {"os.systemd"}));
  CHECK_FALSE(creates_disallowed("os.system", "(", bad));  // already there: not created by "("
  CHECK_FALSE(creates_disallowed("os.", "sys", bad));
  CHECK_FALSE(creates_disallowed("os.", "path", bad));
  CHECK(find_first_of_strings("a\n#b\ndef", {"\ndef", "\n#"}) == 1);
  CHECK(find_first_of_strings("abc", {"\ndef", ""}) == std::string::npos);

  auto vocab = table({"", "", "o", "s", ".", "os", "os.", "sys", "tem", "system", "os.system", "rm",
                      " ", "-", "rf", " -rf", "m -", "x", "y("},
                     1, 0);
  DisallowedFilter filter(vocab, bad);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    int len = rng() % 6;
    for (int i = 0; i < len; ++i) text += vocab.bytes[2 + rng() % (vocab.bytes.size() - 2)];
    auto ok = filter.allowed(text);
    for (int64_t id = 0; id < vocab.size(); ++id)
      REQUIRE(ok[id].item<bool>() == !creates_disallowed(text, vocab.bytes[id], bad));
  }
}

TEST_CASE("generate: disallowed strings never appear even when the model prefers them", "[generate]") {
  // 0 pad, 1 an unused control token; the model puts almost all mass on pieces of the
  // disallowed strings.
  auto vocab = table({"", "", "o", "s", ".", "os.", "sys", "tem", "system", "os.system", "rm", " -", "rf",
                      "rm -rf", " ", "x", "\n"},
                     -1, 0);  // no end-of-text: every sample runs the full 60 tokens
  std::vector<float> pref(vocab.size(), 0.0f);
  for (int id = 2; id <= 13; ++id) pref[id] = 8.0f;
  auto row = torch::tensor(pref);
  LogitsFn lm = [&](const torch::Tensor& idx, KVCache*, int64_t, const torch::Tensor&) {
    return row.unsqueeze(0).expand({idx.size(0), vocab.size()}).clone();
  };
  SamplingOptions o;
  o.temperature = 1.0;
  o.max_new_tokens = 60;
  o.stop = {};
  o.seed = 11;
  o.kv_cache = false;
  std::vector<std::string> bad = {"os.system", "rm -rf"};
  // Without the filter the model does produce them (so the check below can fail).
  auto free_run = generate_tokens(lm, vocab, {{14}}, 20, o, 128);
  int hits = 0;
  for (auto& s : free_run) hits += find_first_of_strings(s.text, bad) != std::string::npos;
  REQUIRE(hits > 0);
  o.disallowed = bad;
  for (double T : {0.0, 1.0, 3.0}) {
    o.temperature = T;
    // the prompt ends with "os." so "system" alone would complete a disallowed string
    auto out = generate_tokens(lm, vocab, {{14, 5}}, 20, o, 128);
    for (auto& s : out) {
      REQUIRE(s.tokens.size() == 60);
      REQUIRE(find_first_of_strings("os." + s.text, bad) == std::string::npos);
    }
  }
}

TEST_CASE("generate: stop sequences, end-of-text and length", "[generate]") {
  // 0 pad, 1 eot
  auto vocab = table({"", "", "    return", " x", "\n", "def", " g", "x\n#", "!"}, 1, 0);
  const int64_t V = vocab.size();
  SamplingOptions o;
  o.temperature = 0;
  o.kv_cache = false;
  o.stop = {"\nclass", "\ndef", "\n#", "\nif", "\nprint"};
  o.max_new_tokens = 10;
  // stop spanning two tokens: "\n" then "def"
  auto s = generate_tokens(scripted(V, 1, {2, 3, 4, 4, 5, 6, 6}), vocab, {{8}}, 1, o, 64)[0];
  CHECK(s.text == "    return x\n");
  CHECK(s.finish_reason == "stop");
  CHECK(s.tokens == std::vector<int32_t>{2, 3, 4, 4, 5});
  CHECK(s.logprobs.size() == 5);
  // stop inside a single token
  s = generate_tokens(scripted(V, 1, {2, 3, 7, 6}), vocab, {{8}}, 1, o, 64)[0];
  CHECK(s.text == "    return xx");
  CHECK(s.finish_reason == "stop");
  // end-of-text: the eot token is reported but adds no text
  s = generate_tokens(scripted(V, 1, {2, 3, 1, 6}), vocab, {{8}}, 1, o, 64)[0];
  CHECK(s.text == "    return x");
  CHECK(s.finish_reason == "eot");
  CHECK(s.tokens == std::vector<int32_t>{2, 3, 1});
  // length
  o.max_new_tokens = 3;
  s = generate_tokens(scripted(V, 1, {2, 3, 6, 6, 6}), vocab, {{8}}, 1, o, 64)[0];
  CHECK(s.text == "    return x g");
  CHECK(s.finish_reason == "length");
  // configurable: no stop sequences
  o.max_new_tokens = 10;
  o.stop = {};
  s = generate_tokens(scripted(V, 1, {2, 3, 4, 4, 5, 1}), vocab, {{8}}, 1, o, 64)[0];
  CHECK(s.text == "    return x\n\ndef");
  CHECK(s.finish_reason == "eot");
}

TEST_CASE("generate: per-sample seeds are reproducible and independent of the batch", "[generate]") {
  const int64_t V = 12;
  std::vector<std::string> bytes = {"", ""};
  for (int i = 2; i < V; ++i) bytes.push_back(std::string(1, char('a' + i)));
  auto vocab = table(bytes, 1, 0);
  // a distribution that depends on the whole real sequence (so histories matter)
  LogitsFn lm = [&](const torch::Tensor& idx, KVCache*, int64_t, const torch::Tensor& mask) {
    auto out = torch::zeros({idx.size(0), V});
    for (int64_t b = 0; b < idx.size(0); ++b) {
      int64_t len = real_len(idx, mask, b), h = 0;
      for (int64_t t = idx.size(1) - len; t < idx.size(1); ++t) h = h * 31 + idx[b][t].item<int64_t>();
      for (int64_t v = 0; v < V; ++v) out[b][v] = std::sin(double(h % 1000) * 0.37 + v * 1.3) * 2;
    }
    return out;
  };
  SamplingOptions o;
  o.temperature = 1.0;
  o.max_new_tokens = 12;
  o.kv_cache = false;
  o.stop = {};
  o.seed = 42;
  auto a = generate_tokens(lm, vocab, {{3, 4}}, 5, o, 64);
  auto b = generate_tokens(lm, vocab, {{3, 4}}, 5, o, 64);
  CHECK(texts(a) == texts(b));
  auto ta = texts(a);
  std::set<std::string> distinct(ta.begin(), ta.end());
  CHECK(distinct.size() > 1);  // different samples use different seeds
  o.batch_size = 1;
  CHECK(texts(generate_tokens(lm, vocab, {{3, 4}}, 5, o, 64)) == texts(a));
  o.batch_size = 7;  // mixed with another (shorter, so left-padded differently) prompt
  auto mixed = generate_tokens(lm, vocab, {{5, 6, 7, 8}, {3, 4}}, 5, o, 64);
  for (int i = 0; i < 5; ++i) {
    CHECK(mixed[5 + i].prompt_index == 1);
    CHECK(mixed[5 + i].sample_index == i);
    CHECK(mixed[5 + i].text == a[i].text);
  }
  o.seed = 43;  // sample i of seed 43 is sample i+1 of seed 42
  auto c = generate_tokens(lm, vocab, {{3, 4}}, 4, o, 64);
  for (int i = 0; i < 4; ++i) CHECK(c[i].text == a[i + 1].text);
}

// ---------------------------------------------------------------- on a random tiny GPT

namespace {

GPT tiny_gpt(int64_t V = 40, int64_t block = 64) {
  torch::manual_seed(1234);
  GPTConfig c;
  c.vocab_size = V;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 32;
  c.block_size = block;
  GPT m(c);
  // GPT-2 init makes nearly uniform logits; scale weights up so the distribution is peaked
  // (greedy paths then do not hinge on float noise).
  torch::NoGradGuard ng;
  for (auto& p : m->parameters())
    if (p.dim() == 2) p.mul_(8.0);
  m->eval();
  return m;
}

TokenTable letters(int64_t V) {
  std::vector<std::string> b = {"", ""};  // 0 pad, 1 eot
  for (int64_t i = 2; i < V; ++i) b.push_back(std::string(1, char('0' + i % 70)));
  return table(b, 1, 0);
}

}  // namespace

TEST_CASE("generate: greedy equals the argmax of the full forward at every step", "[generate]") {
  auto m = tiny_gpt();
  auto vocab = letters(40);
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 24;
  o.stop = {};
  std::vector<int32_t> prompt = {5, 9, 13, 2, 7};
  for (bool kv : {true, false}) {
    o.kv_cache = kv;
    auto s = generate_tokens(gpt_logits_fn(m), vocab, {prompt}, 1, o, 64)[0];
    REQUIRE(!s.tokens.empty());
    std::vector<int64_t> seq(prompt.begin(), prompt.end());
    torch::NoGradGuard ng;
    for (size_t t = 0; t < s.tokens.size(); ++t) {
      auto logits = m->forward(torch::tensor(seq).unsqueeze(0))[0][-1];  // (V) reference
      logits.narrow(0, 0, 1).fill_(-1e30);  // pad is never sampled
      // eot may legitimately win; it ends the sample
      REQUIRE(s.tokens[t] == logits.argmax().item<int64_t>());
      auto lp = torch::log_softmax(m->forward(torch::tensor(seq).unsqueeze(0))[0][-1], 0);
      REQUIRE(s.logprobs[t] == Approx(lp[s.tokens[t]].item<float>()).margin(1e-4));
      seq.push_back(s.tokens[t]);
    }
    if (s.finish_reason != "eot") REQUIRE(s.tokens.size() == 24);
  }
}

TEST_CASE("generate: cached logits equal uncached logits", "[generate]") {
  auto m = tiny_gpt();
  auto lm = gpt_logits_fn(m);
  torch::NoGradGuard ng;
  auto seq = torch::randint(2, 40, {3, 20}, torch::kLong);  // (B, T)
  KVCache cache;
  auto got = lm(seq.narrow(1, 0, 8), &cache, 0, {});  // prefill 8 tokens
  for (int64_t t = 8; t <= 20; ++t) {
    auto full = m->forward(seq.narrow(1, 0, t)).select(1, t - 1);  // (B, V) reference
    REQUIRE(torch::allclose(got, full, 1e-4, 1e-4));
    if (t < 20) got = lm(seq.narrow(1, t, 1), &cache, t, {});
  }
  REQUIRE(cache.length() == 20);
  // and the greedy output is identical either way, with padding in the batch too
  auto vocab = letters(40);
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 30;
  o.stop = {};
  std::vector<std::vector<int32_t>> prompts = {{3, 4, 5}, {7, 8, 9, 10, 11, 12, 13}};
  o.kv_cache = true;
  auto a = generate_tokens(lm, vocab, prompts, 2, o, 64);
  o.kv_cache = false;
  auto b = generate_tokens(lm, vocab, prompts, 2, o, 64);
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].tokens == b[i].tokens);
}

TEST_CASE("generate: a left-padded batch gives what each prompt gives alone", "[generate]") {
  auto m = tiny_gpt();
  auto vocab = letters(40);
  std::vector<std::vector<int32_t>> prompts = {{3, 4, 5}, {7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}, {20, 21, 22, 23, 24, 25, 26}};
  SamplingOptions o;
  o.max_new_tokens = 20;
  o.stop = {};
  for (double T : {0.0, 0.9}) {
    for (bool kv : {true, false}) {
      o.temperature = T;
      o.kv_cache = kv;
      o.batch_size = 16;
      auto batched = generate_tokens(gpt_logits_fn(m), vocab, prompts, 2, o, 64);
      o.batch_size = 1;
      for (size_t p = 0; p < prompts.size(); ++p) {
        auto alone = generate_tokens(gpt_logits_fn(m), vocab, {prompts[p]}, 2, o, 64);
        for (int i = 0; i < 2; ++i) {
          const auto& x = batched[p * 2 + i];
          REQUIRE(x.prompt_index == (int64_t)p);
          REQUIRE(x.tokens == alone[i].tokens);
          for (size_t t = 0; t < x.logprobs.size(); ++t) REQUIRE(x.logprobs[t] == Approx(alone[i].logprobs[t]).margin(1e-4));
        }
      }
    }
  }
  // the reference itself: a padded row's logits equal the unpadded forward's
  torch::NoGradGuard ng;
  auto idx = torch::tensor({0, 0, 0, 3, 4, 5}, torch::kLong).unsqueeze(0);
  auto mask = torch::tensor({0, 0, 0, 1, 1, 1}, torch::kBool).unsqueeze(0);
  auto padded = gpt_logits_fn(m)(idx, nullptr, 0, mask);
  auto plain = m->forward(torch::tensor({3, 4, 5}, torch::kLong).unsqueeze(0))[0][-1];
  REQUIRE(torch::allclose(padded[0], plain, 1e-4, 1e-4));
}

// ---------------------------------------------------------------- the commands

namespace {

// A tiny tokenizer + random GPT saved as a checkpoint in t/ckpt; returns the folder.
std::string tiny_checkpoint(test::TempDir& t, GPT* out = nullptr, std::string* tok_out = nullptr) {
  std::string corpus;
  for (int i = 0; i < 400; ++i)
    corpus += "def f" + std::to_string(i % 23) + "(x):\n    return x + " + std::to_string(i) + "\n\n";
  test::write_text(t / "corpus.py", corpus);
  Config cfg = load_config("", {"tokenizer.input=" + (t / "corpus.py").string(), "tokenizer.vocab_size=300",
                                "model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=64",
                                "run.dir=" + (t / "run").string()});
  const std::string tok_path = (t / "tok.model").string();
  train_tokenizer(cfg, tok_path);
  Tokenizer tok(tok_path);
  torch::manual_seed(7);
  GPT m(GPTConfig::from(cfg.model, tok.vocab_size()));
  const std::string ckpt = (t / "ckpt").string();
  save_model_checkpoint(ckpt, m, cfg, tok_path);
  if (out) *out = m;
  if (tok_out) *tok_out = tok_path;
  return ckpt;
}

}  // namespace

TEST_CASE("generate: the CLI samples JSON lines from a checkpoint", "[generate]") {
  test::TempDir t;
  std::string tok_path;
  const std::string ckpt = tiny_checkpoint(t, nullptr, &tok_path);
  Tokenizer tok(tok_path);

  const std::string base = "generate --checkpoint " + test::shell_quote(ckpt) + " --prompt 'def f(x):' --max-new-tokens 12";
  auto r = test::run_cli(base + " --n 3 --temperature 0.8 --top-p 0.95 --seed 5");
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::istringstream lines(r.out);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    CHECK(j["sample"] == count);
    auto ids = j["tokens"].get<std::vector<int32_t>>();
    CHECK(ids.size() <= 12);
    CHECK(j["logprobs"].size() == ids.size());
    for (auto& lp : j["logprobs"]) CHECK(lp.get<double>() <= 0.0);
    std::string reason = j["finish_reason"];
    CHECK((reason == "stop" || reason == "eot" || reason == "length"));
    // the text is the decoded tokens, cut before a stop sequence (random byte tokens may form
    // invalid UTF-8, which the JSON line carries as U+FFFD: compare through the same JSON dump)
    auto as_json = [](const std::string& x) {
      auto d = nlohmann::json(x).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return nlohmann::json::parse(d).get<std::string>();
    };
    std::string text = j["text"];
    CHECK(as_json(tok.decode(ids)).rfind(text.substr(0, text.size() >= 3 ? text.size() - 3 : 0), 0) == 0);
    ++count;
  }
  CHECK(count == 3);
  CHECK(test::run_cli(base + " --n 3 --temperature 0.8 --top-p 0.95 --seed 5").out == r.out);  // deterministic

  auto greedy = test::run_cli(base + " --temperature 0 --stop '\\nreturn'");
  auto greedy_nokv = test::run_cli(base + " --temperature 0 --stop '\\nreturn' --no-kv-cache");
  REQUIRE(greedy.code == 0);
  {  // the same tokens; log-probs equal to float rounding (the cached path attends one query at a time)
    auto a = nlohmann::json::parse(greedy.out), b = nlohmann::json::parse(greedy_nokv.out);
    CHECK(a["tokens"] == b["tokens"]);
    CHECK(a["text"] == b["text"]);
    REQUIRE(a["logprobs"].size() == b["logprobs"].size());
    for (size_t i = 0; i < a["logprobs"].size(); ++i)
      CHECK(a["logprobs"][i].get<double>() == Approx(b["logprobs"][i].get<double>()).epsilon(1e-5));
  }

  CHECK(test::run_cli("generate --checkpoint " + test::shell_quote((t / "nope").string()) + " --prompt x").code == 2);
  CHECK(test::run_cli("generate --checkpoint " + test::shell_quote(ckpt)).code == 2);
  CHECK(test::run_cli(base + " --top-p 2").code == 2);

  // --format text: for a person, the same samples (greedy) as prompt + completion under a header.
  auto text = test::run_cli(base + " --temperature 0 --stop '\\nreturn' --format text");
  INFO(text.err);
  REQUIRE(text.code == 0);
  auto g = nlohmann::json::parse(greedy.out.substr(0, greedy.out.find('\n')));
  const std::string header = "=== prompt 1, sample 1 (" + std::to_string(g["tokens"].size()) + " tokens, " +
                             g["finish_reason"].get<std::string>() + ", mean log-prob ";
  REQUIRE(text.out.rfind(header, 0) == 0);
  // The body is raw bytes; the JSON line carries invalid UTF-8 as U+FFFD: compare through a dump.
  const std::string body = nlohmann::json::parse(
      nlohmann::json(text.out.substr(text.out.find("===\n") + 4)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
                               .get<std::string>();
  std::string want = "def f(x):" + g["text"].get<std::string>();
  if (want.back() != '\n') want += "\n";
  CHECK(body == want);
  auto bad = test::run_cli(base + " --format yaml");
  CHECK(bad.code == 2);
  CHECK(bad.err.find("--format: 'yaml' is not one of: json, text") != std::string::npos);
}

TEST_CASE("generate: eval humaneval samples, scores and summarises", "[generate]") {
  test::TempDir t;
  GPT m{nullptr};
  std::string tok_path;
  tiny_checkpoint(t, &m, &tok_path);
  Tokenizer tok(tok_path);
  // Make the model always end at once (final LayerNorm outputs a constant pointing at the eot
  // embedding), so completions are empty and the outcome is known: a problem whose prompt is
  // already a correct solution passes, a wrong one fails.
  {
    torch::NoGradGuard ng;
    auto eot = m->wte->weight[tok.eot_id()];
    eot.mul_(10.0);
    m->ln_f->weight.zero_();
    m->ln_f->bias.copy_(eot * 50.0);
  }
  Config cfg = load_config("", {"model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=64",
                                "run.dir=" + (t / "run").string()});
  save_model_checkpoint((t / "eot").string(), m, cfg, tok_path);
  auto problem = [](const std::string& id, const std::string& body) {
    nlohmann::json j = {{"task_id", id},
                        {"prompt", "def one():\n" + body + "\n"},
                        {"canonical_solution", "    return 1\n"},
                        {"test", "def check(candidate):\n    assert candidate() == 1\n"},
                        {"entry_point", "one"}};
    return j.dump() + "\n";
  };
  test::write_text(t / "problems.jsonl", problem("T/0", "    return 1") + problem("T/1", "    return 2") +
                                            problem("T/2", "    return 1"));
  auto r = test::run_cli("eval humaneval --checkpoint " + test::shell_quote((t / "eot").string()) +
                         " --problems " + test::shell_quote((t / "problems.jsonl").string()) +
                         " --n 2 --k 1,2,10 --limit 2 --temperature 0.8 --seed 3 run.dir=" +
                         test::shell_quote((t / "out").string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j.size() == 2);  // pass@10 needs 10 samples per problem: skipped, and said so (stderr, result file)
  CHECK(r.err.find("skipped for k=10") != std::string::npos);
  CHECK(j["pass@1"].get<double>() == Approx(0.5));
  CHECK(j["pass@2"].get<double>() == Approx(0.5));
  auto dir = t / "out" / "humaneval";
  auto results = test::read_text(dir / "step_00000000_t0.8_n2_first2_samples.jsonl_results.jsonl");
  CHECK(std::count(results.begin(), results.end(), '\n') == 4);  // --limit 2: T/2 is not sampled
  std::istringstream summary(test::read_text(dir / "step_00000000_t0.8_n2_first2_summary.jsonl"));
  std::string line;
  std::getline(summary, line);
  auto s0 = nlohmann::json::parse(line);
  CHECK(s0["task_id"] == "T/0");
  CHECK(s0["passed"] == 2);
  std::getline(summary, line);
  CHECK(nlohmann::json::parse(line)["passed"] == 0);
  auto first = nlohmann::json::parse(results.substr(0, results.find('\n')));
  CHECK(first["completion"] == "");
  CHECK(first["finish_reason"] == "eot");
  CHECK(first["passed"] == true);
  auto saved = nlohmann::json::parse(test::read_text(dir / "step_00000000_t0.8_n2_first2_pass_at_k.json"));
  CHECK(saved["pass@1"] == j["pass@1"]);
  CHECK(saved["skipped_k"] == nlohmann::json::array({10}));  // the result file records the skip
  // Without run.dir the files go beside the checkpoint (a standalone folder here), whatever
  // run.dir its config.yaml names.
  auto r2 = test::run_cli("eval humaneval --checkpoint " + test::shell_quote((t / "eot").string()) +
                          " --problems " + test::shell_quote((t / "problems.jsonl").string()) + " --n 1 --k 1");
  INFO(r2.err);
  REQUIRE(r2.code == 0);
  CHECK(std::filesystem::exists(t / "eot" / "humaneval" / "step_00000000_t0.2_n1_pass_at_k.json"));
  CHECK(!std::filesystem::exists(t / "run"));
  // A checkpoint inside a run (<run>/checkpoints/step_N, given with a trailing slash): the run.
  save_model_checkpoint((t / "r" / "checkpoints" / "step_00000005").string(), m, cfg, tok_path);
  auto r3 = test::run_cli("eval humaneval --checkpoint " +
                          test::shell_quote((t / "r" / "checkpoints" / "step_00000005").string() + "/") +
                          " --problems " + test::shell_quote((t / "problems.jsonl").string()) + " --n 1 --k 1");
  INFO(r3.err);
  REQUIRE(r3.code == 0);
  CHECK(std::filesystem::exists(t / "r" / "humaneval" / "step_00000000_t0.2_n1_pass_at_k.json"));
}
