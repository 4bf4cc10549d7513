// `codex-train report --run O`: (re)writes O/report.html from whatever the pipeline folder holds.
#include <iostream>

#include "cli/registry.h"
#include "pipeline/report.h"
#include "util/log.h"

namespace codex {
namespace {

int run_report(cli::Invocation& inv) {
  const std::string dir = inv.require("run");
  const std::string path = report::write_report(dir);
  spdlog::info("report: wrote {}", path);
  std::cout << path << std::endl;
  return 0;
}

cli::Registrar reg({"report", "", "write <run>/report.html (self-contained HTML) from a pipeline output folder",
                    {{"run", true, "the pipeline output folder (pipeline --output-dir)"}}, false, run_report});

}  // namespace
}  // namespace codex
