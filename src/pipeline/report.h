#pragma once
// `report --run O`: one self-contained HTML file (inline SVG and CSS, no scripts, no network)
// built from whatever a pipeline output folder holds. Missing stages show as "not run yet", so a
// partial or running pipeline renders too. The folder layout it reads:
//   pipeline.json                 {"command", "config", "started", "stages": [...]}
//   summary.json                  {"models": {"M0": {"<set>": {"pass@1": x, ...}}, ...}}
//   <nn>-<stage>/DONE             the stage's summary JSON (present once it finished)
//   02-data/data/stats.json, 04-problems/problems_stats.json     data statistics
//   <nn>-<stage>/metrics.jsonl    training curves (one JSON object per logged step)
//   09-eval/<model>/<set>/*_results.jsonl                         samples shown per model
#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace codex::report {

// Escapes & < > " ' so any text (completions, config, paths) is inert inside HTML and attributes.
std::string html_escape(const std::string& text);

// One line of a chart; points with a non-finite x or y are skipped (a gap, not a zero).
struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y)
};

struct ChartOptions {
  std::string title, x_label, y_label;
  int width = 560, height = 280;  // SVG user units (the image scales with the page)
};

// An SVG line chart with axes, "nice" tick labels, axis labels, a title and a legend. No points
// at all gives a framed "no data" chart; one point is drawn as a dot.
std::string svg_line_chart(const std::vector<Series>& series, const ChartOptions& opt);

// A grouped bar chart from 0 up: one group per name (e.g. an evaluation set), one bar per series
// in each group (e.g. M0, M1, M2), each labelled with its value. A non-finite value is no bar.
struct BarGroup {
  std::string name;
  std::vector<double> values;  // one per series
};
std::string svg_bar_chart(const std::vector<std::string>& series, const std::vector<BarGroup>& groups,
                          const ChartOptions& opt);

// The report's HTML for run folder `run_dir` (UsageError when it is not a folder).
std::string render_report(const std::string& run_dir);
// Renders and writes <run_dir>/report.html atomically; returns its path.
std::string write_report(const std::string& run_dir);

}  // namespace codex::report
