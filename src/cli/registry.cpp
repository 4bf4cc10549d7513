#include "cli/registry.h"

#include <torch/torch.h>
#include <torch/version.h>
#include <yaml-cpp/yaml.h>

#include <iostream>
#include <set>

#include "util/error.h"
#include "util/log.h"
#include "util/text.h"

namespace codex {
const char* build_version();  // generated at build time (cmake/version.cmake)
}

namespace codex::cli {
namespace {

std::vector<CommandSpec>& registry() {
  static std::vector<CommandSpec> r;
  return r;
}

const char* kProgram = "codex-train";

void print_version(std::ostream& os) {
  os << kProgram << " " << build_version() << "\n"
     << "LibTorch " << TORCH_VERSION << "\n";
  const bool cuda = torch::cuda::is_available();
  os << "CUDA: " << (cuda ? "available, " + std::to_string(torch::cuda::device_count()) + " device(s)" : std::string("not available"))
     << "\n";
#ifdef CODEX_WITH_NCCL
  os << "NCCL: built in\n";
#else
  os << "NCCL: not built in (dist.backend=gloo only)\n";
#endif
}

void print_top_help(std::ostream& os) {
  os << "usage: " << kProgram << " <command> [subcommand] [--config FILE.yaml] [key=value ...] [--flags]\n\n"
     << "commands:\n";
  std::vector<CommandSpec> sorted = registry();
  std::sort(sorted.begin(), sorted.end(),
            [](auto& a, auto& b) { return a.name + " " + a.sub < b.name + " " + b.sub; });
  for (auto& c : sorted) {
    std::string name = c.sub.empty() ? c.name : c.name + " " + c.sub;
    os << "  " << name << std::string(name.size() < 22 ? 22 - name.size() : 1, ' ') << c.summary << "\n";
  }
  os << "\nRun '" << kProgram << " <command> --help' (or 'help <command>') for a command's flags and config keys;\n"
     << "'" << kProgram << " config keys [prefix]' lists every key; '" << kProgram << " --version' the build.\n"
     << "Exit status: 0 success, 2 bad usage / config / input, 1 failure while running.\n";
}

void print_command_help(std::ostream& os, const CommandSpec& c) {
  std::string name = c.sub.empty() ? c.name : c.name + " " + c.sub;
  os << "usage: " << kProgram << " " << name << " [--config FILE.yaml] [key=value ...]";
  for (auto& f : c.flags) os << " [--" << f.name << (f.takes_value ? " V" : "") << "]";
  os << "\n\n" << c.summary << "\n\nflags:\n";
  os << "  --config FILE        YAML config (dotted key=value arguments override it)\n";
  for (auto& f : c.flags) {
    std::string n = "--" + f.name + (f.takes_value ? " V" : "");
    os << "  " << n << std::string(n.size() < 20 ? 20 - n.size() : 1, ' ') << " " << f.help;
    if (!f.config_key.empty()) os << " (= " << f.config_key << ")";
    if (f.repeatable) os << " (repeatable)";
    os << "\n";
  }
  os << "  --help               this help\n";
  const auto keys = command_keys(c);
  if (keys.empty()) return;
  os << "\nconfig keys it reads (key=value arguments, or in the --config file):\n" << format_keys(keys, "  ");
}

}  // namespace

Registrar::Registrar(CommandSpec spec) { registry().push_back(std::move(spec)); }

std::vector<KeyInfo> command_keys(const CommandSpec& c) {
  std::vector<KeyInfo> out;
  for (auto& k : config_key_info()) {
    bool read = false;
    for (auto& p : c.keys) read = read || key_matches_prefix(k.key, p);
    for (auto& f : c.flags) read = read || f.config_key == k.key;
    for (auto& x : c.excluded_keys) read = read && !key_matches_prefix(k.key, x);
    if (read) out.push_back(k);
  }
  return out;
}

std::string format_keys(const std::vector<KeyInfo>& keys, const std::string& indent) {
  size_t w = 0;
  for (auto& k : keys) w = std::max(w, k.key.size());
  std::string out;
  for (auto& k : keys) {
    std::string line = indent + k.key + std::string(w - k.key.size() + 2, ' ') + k.type + " = " + k.default_value;
    if (!k.range.empty()) line += "  " + k.range;
    if (!k.help.empty()) line += "  -- " + k.help;
    out += line + "\n";
  }
  return out;
}

std::string closest_name(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t bd = SIZE_MAX;
  for (auto& n : names) {
    size_t d = edit_distance(word, n);
    if (word.size() >= 3 && n.rfind(word, 0) == 0) d = std::min<size_t>(d, 1);  // a prefix: "tok" -> "tokenizer"
    if (d < bd) bd = d, best = n;
  }
  return bd <= std::max<size_t>(2, word.size() / 3) ? best : std::string();
}

const std::vector<CommandSpec>& commands() { return registry(); }

Config Invocation::config() const {
  Config cfg;
  if (!config_path.empty()) cfg = load_config(config_path, overrides);
  else cfg = load_config("", overrides);
  for (auto& f : spec->flags) {
    if (f.config_key.empty() || !has(f.name)) continue;
    const auto& vals = flags.at(f.name);
    YAML::Node node;
    if (f.repeatable) {
      node = YAML::Node(YAML::NodeType::Sequence);
      for (auto& v : vals) node.push_back(v);
    } else {
      node = YAML::Node(vals.back());
    }
    set_key(cfg, f.config_key, node, "--" + f.name + ": ");
  }
  finalize_config(cfg);
  return cfg;
}

bool Invocation::has(const std::string& flag) const { return flags.count(flag) > 0; }

std::string Invocation::get(const std::string& flag, const std::string& def) const {
  auto it = flags.find(flag);
  return it == flags.end() ? def : it->second.back();
}

std::string Invocation::require(const std::string& flag) const {
  if (!has(flag)) throw UsageError(spec->name + (spec->sub.empty() ? "" : " " + spec->sub) + ": --" + flag + " is required");
  return get(flag);
}

double Invocation::get_double(const std::string& flag, double def) const {
  if (!has(flag)) return def;
  std::string v = get(flag);
  try {
    size_t pos = 0;
    double d = std::stod(v, &pos);
    if (pos != v.size()) throw std::invalid_argument(v);
    return d;
  } catch (const std::exception&) {
    throw UsageError("--" + flag + ": expected a number, got '" + v + "'");
  }
}

int64_t Invocation::get_int(const std::string& flag, int64_t def) const {
  if (!has(flag)) return def;
  std::string v = get(flag);
  try {
    size_t pos = 0;
    long long d = std::stoll(v, &pos);
    if (pos != v.size()) throw std::invalid_argument(v);
    return d;
  } catch (const std::exception&) {
    throw UsageError("--" + flag + ": expected an integer, got '" + v + "'");
  }
}

std::vector<std::string> Invocation::all(const std::string& flag) const {
  auto it = flags.find(flag);
  return it == flags.end() ? std::vector<std::string>{} : it->second;
}

namespace {

// The flag at args[i] (`--name`, `--name=value` or `--name value`: i then moves past the value)
// into inv, checked against the command's flags; `--config FILE` sets inv.config_path.
void parse_flag(const std::vector<std::string>& args, size_t& i, const std::string& name, Invocation& inv) {
  const CommandSpec* spec = inv.spec;
  const std::string& a = args[i];
  std::string fname = a.substr(2), value;
  bool has_value = false;
  auto eq = fname.find('=');
  if (eq != std::string::npos) {
    value = fname.substr(eq + 1);
    fname = fname.substr(0, eq);
    has_value = true;
  }
  if (fname == "config") {
    if (!has_value) {
      if (i + 1 >= args.size()) throw UsageError("--config needs a file");
      value = args[++i];
    }
    if (!inv.config_path.empty())
      throw UsageError("--config given twice; use one file (it may name another with 'base: FILE')");
    inv.config_path = value;
    return;
  }
  const FlagSpec* fs = nullptr;
  for (auto& f : spec->flags)
    if (f.name == fname) fs = &f;
  if (!fs) {
    std::string known = "--config";
    for (auto& f : spec->flags) known += ", --" + f.name;
    throw UsageError("unknown flag '--" + fname + "' for '" + name + (spec->sub.empty() ? "" : " " + spec->sub) +
                     "' (known: " + known + ")");
  }
  if (fs->takes_value && !has_value) {
    if (i + 1 >= args.size()) throw UsageError("--" + fname + " needs a value");
    value = args[++i];
  }
  if (!fs->takes_value) {
    if (has_value) throw UsageError("--" + fname + " takes no value");
    value = "true";
  }
  // Given twice, a flag that takes one value is a mistake (which one was meant?), never "the last".
  if (!fs->repeatable && inv.flags.count(fname))
    throw UsageError("--" + fname + " given twice" +
                     (fs->takes_value ? " ('" + inv.flags[fname].back() + "' and '" + value + "')" : std::string()) +
                     "; give it once");
  inv.flags[fname].push_back(value);
}

// The subcommand args[1] names among `matches` (the entries of command `name`); nullptr after
// printing the list of subcommands for `name [--help]` (exit status in `code`).
const CommandSpec* pick_subcommand(const std::string& name, const std::vector<const CommandSpec*>& matches,
                                   const std::vector<std::string>& args, int& code) {
  const size_t i = 1;
  if (i >= args.size() || args[i] == "--help" || args[i] == "-h") {
    std::ostream& os = i < args.size() ? std::cout : std::cerr;
    os << "usage: " << kProgram << " " << name << " <subcommand> ...\n\nsubcommands:\n";
    for (auto* c : matches) os << "  " << c->sub << std::string(c->sub.size() < 12 ? 12 - c->sub.size() : 1, ' ') << c->summary << "\n";
    code = i < args.size() ? 0 : 2;
    return nullptr;
  }
  const CommandSpec* spec = nullptr;
  for (auto* c : matches)
    if (c->sub == args[i]) spec = c;
  if (!spec) {
    std::string subs;
    std::vector<std::string> names;
    for (auto* c : matches) subs += (subs.empty() ? "" : ", ") + c->sub, names.push_back(c->sub);
    const std::string near = closest_name(args[i], names);
    throw UsageError("unknown subcommand '" + name + " " + args[i] + "' (" +
                     (near.empty() ? "" : "did you mean '" + name + " " + near + "'? ") + "expected one of: " + subs + ")");
  }
  return spec;
}

}  // namespace

int dispatch(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "--version" || args[0] == "version")) {
    print_version(std::cout);
    return 0;
  }
  // `help <command> [sub]` is `<command> [sub] --help`.
  if (args.size() >= 2 && args[0] == "help") {
    args.erase(args.begin());
    args.push_back("--help");
  }
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_top_help(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  const std::string& name = args[0];
  std::vector<const CommandSpec*> matches;
  for (auto& c : registry())
    if (c.name == name) matches.push_back(&c);
  if (matches.empty()) {
    std::vector<std::string> names;
    for (auto& c : registry()) names.push_back(c.name);
    const std::string near = closest_name(name, names);
    throw UsageError("unknown command '" + name + "' (" + (near.empty() ? "" : "did you mean '" + near + "'? ") + "see '" +
                     std::string(kProgram) + " --help')");
  }

  size_t i = 1;
  const CommandSpec* spec = matches[0];
  if (!(matches.size() == 1 && matches[0]->sub.empty())) {
    int code = 0;
    spec = pick_subcommand(name, matches, args, code);
    if (!spec) return code;
    ++i;
  }

  Invocation inv;
  inv.spec = spec;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      print_command_help(std::cout, *spec);
      return 0;
    }
    if (a.rfind("--", 0) == 0) {
      parse_flag(args, i, name, inv);
    } else if (a.find('=') != std::string::npos && a[0] != '=') {
      inv.overrides.push_back(a);
    } else if (spec->takes_positional) {
      inv.positional.push_back(a);
    } else {
      throw UsageError("unexpected argument '" + a + "' (overrides are written key=value)");
    }
  }
  return spec->run(inv);
}

}  // namespace codex::cli
