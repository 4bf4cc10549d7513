#include "tokenizer/tokenizer.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>

#include "helpers.h"
#include "tokenizer/tiny_tokenizer.h"
#include "util/error.h"

using namespace codex;

namespace {

// Inputs that break naive SentencePiece wrappers.
std::vector<std::string> nasty_inputs() {
  std::vector<std::string> v = {
      "",
      " ",
      "\n",
      "\n\n\n",
      "x",
      "def f(x):\n    return x\n",
      "def f(x):\r\n\treturn x\r\n",           // CRLF + tab
      "trailing   \n  \n\t\n   ",               // trailing spaces, whitespace-only lines
      "        deeply\n                nested\n",  // long runs
      std::string("nul\0byte", 8),
      std::string("\0", 1),
      "\x01\x02\x1b[31mred\x7f",                  // control characters
      "caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",  // é ï 中文 😀
      "\xe2\x96\x81",                             // U+2581 (SentencePiece's space)
      "a\xe2\x96\x81 b \xe2\x96\x81\xe2\x96\x81\n",
      "\xee\x80\x80",                             // U+E000 (our newline placeholder)
      "x\xee\x80\x80y\n\xee\x80\x80",
      "\xff\xfe\x80",                             // invalid UTF-8
      "\xc3",                                     // truncated sequence
      "\xe2\x96",                                 // truncated U+2581
      "\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80",   // overlong, surrogate, > U+10FFFF
      "\xef\xbf\xbd",                             // U+FFFD itself
      "<|endoftext|><pad><unk><s></s><0x41>",     // special-looking text is just text
      "\r",
      "\r\r\n\n\r",
      std::string(300, ' ') + "x" + std::string(70, '\n'),
  };
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {  // random bytes, biased toward whitespace and high bytes
    std::string s;
    int n = static_cast<int>(rng() % 64);
    for (int j = 0; j < n; ++j) {
      uint32_t r = rng() % 8;
      if (r == 0) s += ' ';
      else if (r == 1) s += '\n';
      else if (r == 2) s += '\t';
      else s += static_cast<char>(rng() % 256);
    }
    v.push_back(s);
  }
  for (int i = 0; i < 50; ++i) {  // concatenations of the fixed nasty fragments
    std::string s;
    for (int j = 0; j < 4; ++j) s += v[rng() % 26];
    v.push_back(s);
  }
  return v;
}

}  // namespace

TEST_CASE("tokenizer: decode(encode(x)) == x for nasty inputs, both variants", "[tokenizer]") {
  test::TempDir t;
  for (bool runs : {true, false}) {
    Tokenizer tok(test::train_tiny_tokenizer(t.path, runs, 400, runs ? "runs" : "plain"));
    for (const auto& s : nasty_inputs()) {
      auto ids = tok.encode(s);
      INFO("runs=" << runs << " input bytes=" << s.size());
      REQUIRE(tok.decode(ids) == s);
      for (int32_t id : ids) {
        REQUIRE(id >= 0);
        REQUIRE(id < tok.vocab_size());
        REQUIRE(id != tok.eot_id());
        REQUIRE(id != tok.pad_id());
      }
    }
    // Code in the style of the training text also round-trips and compresses (< 0.75 token/byte).
    std::string code = test::synthetic_python(30, 999);
    auto ids = tok.encode(code);
    REQUIRE(tok.decode(ids) == code);
    INFO("tokens " << ids.size() << " bytes " << code.size());
    REQUIRE(ids.size() * 4 < code.size() * 3);
  }
}

TEST_CASE("tokenizer: special tokens, byte tokens and vocabulary", "[tokenizer]") {
  test::TempDir t;
  std::string path = test::train_tiny_tokenizer(t.path, true, 450);
  Tokenizer tok(path);
  REQUIRE(tok.vocab_size() == 450);
  REQUIRE(tok.path() == path);
  REQUIRE(tok.eot_id() != tok.pad_id());
  REQUIRE(tok.token_bytes(tok.eot_id()).empty());
  REQUIRE(tok.token_bytes(tok.pad_id()).empty());
  REQUIRE(tok.is_control(tok.eot_id()));
  REQUIRE_THROWS(tok.token_bytes(450));
  REQUIRE_THROWS(tok.token_bytes(-1));
  // The eot marker is only produced on purpose, never by encoding its spelling.
  std::vector<int32_t> lit = tok.encode("<|endoftext|>");
  REQUIRE(std::find(lit.begin(), lit.end(), tok.eot_id()) == lit.end());
  REQUIRE(tok.decode({tok.eot_id()}).empty());
  // All 256 bytes have a single-byte token; a character never seen in training is its UTF-8 bytes.
  std::string han = "\xe4\xb8\xad";
  auto ids = tok.encode(han);
  REQUIRE(ids.size() == 3);
  for (size_t i = 0; i < 3; ++i) REQUIRE(tok.token_bytes(ids[i]) == han.substr(i, 1));
  // U+2581 in the input is not a space: it goes out as its three bytes.
  auto w = tok.encode("\xe2\x96\x81");
  REQUIRE(w.size() == 3);
  REQUIRE(tok.decode(w) == "\xe2\x96\x81");
  // token_bytes agrees with decode for every id.
  for (int32_t id = 0; id < tok.vocab_size(); ++id) REQUIRE(tok.decode({id}) == tok.token_bytes(id));
}

TEST_CASE("tokenizer: whitespace runs merge newline + indentation, the baseline does not", "[tokenizer]") {
  test::TempDir t;
  Tokenizer runs(test::train_tiny_tokenizer(t.path, true, 500, "runs"));
  Tokenizer plain(test::train_tiny_tokenizer(t.path, false, 500, "plain"));
  // Some token of the run model spans a newline plus following spaces.
  bool newline_indent = false, space_run = false;
  for (int32_t id = 0; id < runs.vocab_size(); ++id) {
    const std::string& b = runs.token_bytes(id);
    if (b.find("\n    ") != std::string::npos) newline_indent = true;
    if (b.find("        ") != std::string::npos) space_run = true;
  }
  REQUIRE(newline_indent);
  REQUIRE(space_run);
  // The baseline never merges spaces into runs, and '\n' is always a token of its own.
  for (int32_t id = 0; id < plain.vocab_size(); ++id) {
    const std::string& b = plain.token_bytes(id);
    INFO("token " << id << " '" << b << "'");
    REQUIRE(b.find("  ") == std::string::npos);
    if (b.find('\n') != std::string::npos) REQUIRE(b == "\n");
  }
  std::string code = test::synthetic_python(30, 4242);  // unseen, same style
  size_t nr = runs.encode(code).size(), np = plain.encode(code).size();
  INFO("runs " << nr << " plain " << np);
  REQUIRE(nr < np);
}

TEST_CASE("tokenizer: training is deterministic, bad models and inputs are usage errors", "[tokenizer]") {
  test::TempDir t;
  std::string a = test::train_tiny_tokenizer(t.path, true, 400, "a");
  std::string b = test::train_tiny_tokenizer(t.path, true, 400, "b");
  {  // The model file embeds temp paths of the trainer spec; the vocabulary must be identical.
    Tokenizer ta(a), tb(b);
    REQUIRE(ta.vocab_size() == tb.vocab_size());
    for (int32_t id = 0; id < ta.vocab_size(); ++id) REQUIRE(ta.token_bytes(id) == tb.token_bytes(id));
  }
  REQUIRE_THROWS_AS(Tokenizer((t / "missing.model").string()), UsageError);
  test::write_text(t / "junk.model", "not a model");
  REQUIRE_THROWS_AS(Tokenizer((t / "junk.model").string()), UsageError);
  REQUIRE_THROWS_WITH(Tokenizer(t.str()), Catch::Contains("has no tokenizer"));  // a folder without one (used to abort)
  REQUIRE_THROWS_AS(Tokenizer(""), UsageError);

  Config cfg = load_config("", {});
  REQUIRE_THROWS_AS(train_tokenizer(cfg, (t / "x.model").string()), UsageError);  // no input
  cfg.tokenizer.input = {(t / "nope").string()};
  REQUIRE_THROWS_AS(train_tokenizer(cfg, (t / "x.model").string()), UsageError);  // missing input
  test::write_text(t / "empty" / "e.py", "");
  cfg.tokenizer.input = {(t / "empty").string()};
  REQUIRE_THROWS_AS(train_tokenizer(cfg, (t / "x.model").string()), UsageError);  // nothing usable
  cfg.tokenizer.input = {(t / "corpus").string()};
  cfg.tokenizer.vocab_size = 100000;  // far more pieces than the tiny corpus can give
  REQUIRE_THROWS_AS(train_tokenizer(cfg, (t / "x.model").string()), UsageError);
}

TEST_CASE("tokenizer CLI: train, encode, decode, stats and exit codes", "[tokenizer]") {
  test::TempDir t;
  std::string model = test::train_tiny_tokenizer(t.path, true, 400);  // also writes t/corpus
  std::string M = " --tokenizer " + test::shell_quote(model);

  std::string text = "def f(x):\r\n\treturn x  \n\xff\xe2\x96\x81\n";
  auto enc = test::run_cli("tokenizer encode" + M, text);
  REQUIRE(enc.code == 0);
  REQUIRE(enc.out.back() == '\n');
  REQUIRE(enc.out.find('\n') == enc.out.size() - 1);  // one line
  auto dec = test::run_cli("tokenizer decode" + M, enc.out);
  REQUIRE(dec.code == 0);
  REQUIRE(dec.out == text);
  REQUIRE(test::run_cli("tokenizer encode" + M, "").code == 0);

  auto bad = test::run_cli("tokenizer decode" + M, "1 2 abc");
  REQUIRE(bad.code == 2);
  REQUIRE(bad.err.find("abc") != std::string::npos);
  REQUIRE(test::run_cli("tokenizer decode" + M, "999999").code == 2);
  REQUIRE(test::run_cli("tokenizer decode" + M, "-1").code == 2);
  auto missing = test::run_cli("tokenizer encode --tokenizer " + test::shell_quote((t / "no.model").string()), "x");
  REQUIRE(missing.code == 2);
  REQUIRE(missing.err.find("no.model") != std::string::npos);

  // stats over a directory and a file: counts checked against the library.
  Tokenizer tok(model);
  std::string f0 = test::read_text(t / "corpus" / "m0.py");
  test::write_text(t / "one" / "a.py", f0);
  test::write_text(t / "one" / "b.txt", "not python: skipped in directories");
  test::write_text(t / "extra.py", "x = 1\n");
  auto st = test::run_cli("tokenizer stats" + M + " --input " + test::shell_quote((t / "one").string()) + " " +
                          test::shell_quote((t / "extra.py").string()));
  REQUIRE(st.code == 0);
  auto j = nlohmann::json::parse(st.out);
  REQUIRE(j["files"] == 2);
  REQUIRE(j["bytes"] == f0.size() + 6);
  REQUIRE(j["tokens"] == tok.encode(f0).size() + tok.encode("x = 1\n").size());
  REQUIRE(j["roundtrip_ok"] == true);
  REQUIRE(j["tokens_per_byte"].get<double>() == Approx(j["tokens"].get<double>() / j["bytes"].get<double>()));
  REQUIRE(test::run_cli("tokenizer stats" + M).code == 2);
  REQUIRE(test::run_cli("tokenizer stats" + M + " --input " + test::shell_quote((t / "nope").string())).code == 2);

  // train through the CLI: writes <run.dir>/tokenizer.model.
  std::string run = (t / "run").string();
  auto tr = test::run_cli("tokenizer train run.dir=" + test::shell_quote(run) + " tokenizer.vocab_size=400 --input " +
                          test::shell_quote((t / "corpus").string()));
  INFO(tr.err);
  REQUIRE(tr.code == 0);
  REQUIRE(std::filesystem::exists(t / "run" / "tokenizer.model"));
  REQUIRE(nlohmann::json::parse(tr.out)["vocab_size"] == 400);
  // encode without --tokenizer uses <run.dir>/tokenizer.model.
  REQUIRE(test::run_cli("tokenizer encode run.dir=" + test::shell_quote(run), "x = 1").code == 0);
  // Training again over it is refused (the run's data was encoded with it) unless --force.
  const std::string trained = test::read_text(t / "run" / "tokenizer.model");
  auto again = test::run_cli("tokenizer train run.dir=" + test::shell_quote(run) + " tokenizer.vocab_size=300 --input " +
                             test::shell_quote((t / "corpus").string()));
  REQUIRE(again.code == 2);
  REQUIRE(again.err.find("tokenizer train: tokenizer '" + run + "/tokenizer.model' already exists; pass --force") !=
          std::string::npos);
  REQUIRE(test::read_text(t / "run" / "tokenizer.model") == trained);
  again = test::run_cli("tokenizer train run.dir=" + test::shell_quote(run) + " tokenizer.vocab_size=350 --force --input " +
                        test::shell_quote((t / "corpus").string()));
  INFO(again.err);
  REQUIRE(again.code == 0);
  REQUIRE(nlohmann::json::parse(again.out)["vocab_size"] == 350);
  auto empty = test::run_cli("tokenizer train run.dir=" + test::shell_quote(run) + " --input " +
                             test::shell_quote((t / "nope").string()));
  REQUIRE(empty.code == 2);
}
