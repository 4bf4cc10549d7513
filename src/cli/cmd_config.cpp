#include <iostream>

#include "cli/registry.h"

namespace codex::cli {
namespace {

Registrar show({"config", "show", "print the fully resolved config as YAML", {}, false,
                [](Invocation& inv) {
                  std::cout << config_to_yaml(inv.config());
                  return 0;
                }});

Registrar keys({"config", "keys", "list every config key", {}, false, [](Invocation&) {
                  for (auto& k : config_keys()) std::cout << k << "\n";
                  return 0;
                }});

}  // namespace
}  // namespace codex::cli
