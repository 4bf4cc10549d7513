#include <iostream>

#include "cli/registry.h"
#include "util/error.h"

namespace codex::cli {
namespace {

Registrar show({"config", "show", "print the fully resolved config as YAML", {}, false,
                [](Invocation& inv) {
                  std::cout << config_to_yaml(inv.config());
                  return 0;
                },
                {""}});

// `config keys [prefix ...]`: one line per key (name first, so `cut -d' ' -f1` gives the names)
// with its type, default, range and description, all from the config registry.
int run_keys(Invocation& inv) {
  std::vector<KeyInfo> out;
  for (auto& k : config_key_info()) {
    bool want = inv.positional.empty();
    for (auto& p : inv.positional) want = want || key_matches_prefix(k.key, p);
    if (want) out.push_back(k);
  }
  if (out.empty()) {
    std::vector<std::string> names;
    for (auto& k : config_key_info()) {
      names.push_back(k.key);
      names.push_back(k.key.substr(0, k.key.find('.')));
    }
    const std::string near = closest_name(inv.positional.front(), names);
    throw UsageError("config keys: no key starts with '" + inv.positional.front() + "'" +
                     (near.empty() ? "" : " (did you mean '" + near + "'?)"));
  }
  std::cout << format_keys(out, "");
  return 0;
}

Registrar keys({"config", "keys", "list config keys (all, or those under a prefix) with type, default and meaning", {},
                true, run_keys});

}  // namespace
}  // namespace codex::cli
