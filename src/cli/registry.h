#pragma once
// Commands register themselves (one static CommandSpec per command, in the file that implements
// it), so adding a command never touches main.cpp.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace codex::cli {

struct FlagSpec {
  std::string name;        // without the leading "--"
  bool takes_value = true;
  std::string help;
  std::string config_key;  // when set, the flag is a shorthand for that config key
  bool repeatable = false;
};

// --force: replace a complete output (data, tokenizer, export, results); = overwrite=true.
inline const FlagSpec kForceFlag{"force", false, "replace a complete output that is already there", "overwrite"};

struct Invocation;

struct CommandSpec {
  std::string name;        // e.g. "tokenizer"
  std::string sub;         // e.g. "train" ("" for commands without subcommands)
  std::string summary;
  std::vector<FlagSpec> flags;
  bool takes_positional = false;
  std::function<int(Invocation&)> run;
  // Config keys the command reads, as prefixes ("train." = every train.* key, "resume" = that
  // key); `--help` lists them (with the keys its flags set) from the config registry.
  std::vector<std::string> keys;
  // Keys under `keys` that the command sets itself (e.g. the pipeline's run.dir): not listed, and
  // the command refuses them.
  std::vector<std::string> excluded_keys;
};

// The config keys a command reads (its `keys` prefixes + its flags' keys), in registry order.
std::vector<KeyInfo> command_keys(const CommandSpec& c);
// "  key  type = default  range  description" lines, keys padded to one width.
std::string format_keys(const std::vector<KeyInfo>& keys, const std::string& indent);
// The name closest to `word` among `names` within a small edit distance, or "".
std::string closest_name(const std::string& word, const std::vector<std::string>& names);

struct Invocation {
  const CommandSpec* spec = nullptr;
  std::string config_path;
  std::vector<std::string> overrides;
  std::map<std::string, std::vector<std::string>> flags;
  std::vector<std::string> positional;

  // Resolved config: file, then overrides, then flags that map to config keys.
  Config config() const;
  bool has(const std::string& flag) const;
  std::string get(const std::string& flag, const std::string& def = "") const;
  // Like get, but a UsageError naming the flag when it is absent.
  std::string require(const std::string& flag) const;
  double get_double(const std::string& flag, double def) const;
  int64_t get_int(const std::string& flag, int64_t def) const;
  std::vector<std::string> all(const std::string& flag) const;
};

struct Registrar {
  explicit Registrar(CommandSpec spec);
};

const std::vector<CommandSpec>& commands();
// Parses argv and runs the command; returns the process exit code (0, 1, 2).
int dispatch(int argc, char** argv);

}  // namespace codex::cli
