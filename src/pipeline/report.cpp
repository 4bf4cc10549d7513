#include "pipeline/report.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"

namespace codex::report {

using json = nlohmann::json;

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// ---- numbers ----------------------------------------------------------------------------------

std::string fmt_num(double v, int digits = 4) {
  if (!std::isfinite(v)) return "–";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char b[32];
    std::snprintf(b, sizeof b, "%.0f", v);
    return b;
  }
  char b[32];
  std::snprintf(b, sizeof b, "%.*g", digits, v);
  return b;
}

// Coordinates: two decimals are far below a pixel and keep the file small.
std::string coord(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// Ticks at 1, 2 or 5 times a power of ten, about `target` of them, covering [lo, hi].
struct Axis {
  double lo, hi;
  std::vector<double> ticks;
};
Axis nice_axis(double lo, double hi, int target = 5) {
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo <= 0) {  // one value: a window around it
    double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  double raw = (hi - lo) / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  Axis a;
  a.lo = std::floor(lo / step) * step;
  a.hi = std::ceil(hi / step) * step;
  for (int i = 0;; ++i) {
    double t = a.lo + i * step;
    if (t > a.hi + step * 1e-9) break;
    if (std::fabs(t) < step * 1e-9) t = 0;  // no "-0" or "1e-17"
    a.ticks.push_back(t);
  }
  return a;
}

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// The chart's <svg> element, white background and centred title (both chart kinds).
void svg_open(std::ostringstream& s, const ChartOptions& opt) {
  s << "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " << opt.width << ' ' << opt.height
    << "\" role=\"img\" aria-label=\"" << html_escape(opt.title) << "\">";
  s << "<rect x=\"0\" y=\"0\" width=\"" << opt.width << "\" height=\"" << opt.height << "\" fill=\"#fff\"/>";
  s << "<text x=\"" << coord(opt.width / 2.0) << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">"
    << html_escape(opt.title) << "</text>";
}

}  // namespace

std::string svg_line_chart(const std::vector<Series>& series, const ChartOptions& opt) {
  const double W = opt.width, H = opt.height;
  const double left = 62, right = 14, top = 46, bottom = 42;
  const double pw = W - left - right, ph = H - top - bottom;
  std::ostringstream s;
  svg_open(s, opt);

  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  size_t finite = 0;
  for (const auto& se : series)
    for (const auto& [x, y] : se.points)
      if (std::isfinite(x) && std::isfinite(y)) {
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
        ++finite;
      }
  s << "<rect x=\"" << coord(left) << "\" y=\"" << coord(top) << "\" width=\"" << coord(pw) << "\" height=\""
    << coord(ph) << "\" fill=\"none\" stroke=\"#888\"/>";
  if (finite == 0) {
    s << "<text x=\"" << coord(left + pw / 2) << "\" y=\"" << coord(top + ph / 2)
      << "\" text-anchor=\"middle\" font-size=\"13\" fill=\"#888\">no data</text></svg>";
    return s.str();
  }
  Axis ax = nice_axis(x0, x1), ay = nice_axis(y0, y1);
  auto px = [&](double x) { return left + (x - ax.lo) / (ax.hi - ax.lo) * pw; };
  auto py = [&](double y) { return top + (1 - (y - ay.lo) / (ay.hi - ay.lo)) * ph; };

  // grid and tick labels
  for (double t : ay.ticks) {
    s << "<line x1=\"" << coord(left) << "\" x2=\"" << coord(left + pw) << "\" y1=\"" << coord(py(t)) << "\" y2=\""
      << coord(py(t)) << "\" stroke=\"#e4e4e4\"/>";
    s << "<text x=\"" << coord(left - 5) << "\" y=\"" << coord(py(t) + 4) << "\" text-anchor=\"end\" font-size=\"11\">"
      << html_escape(fmt_num(t)) << "</text>";
  }
  for (double t : ax.ticks) {
    s << "<line x1=\"" << coord(px(t)) << "\" x2=\"" << coord(px(t)) << "\" y1=\"" << coord(top + ph) << "\" y2=\""
      << coord(top + ph + 4) << "\" stroke=\"#888\"/>";
    s << "<text x=\"" << coord(px(t)) << "\" y=\"" << coord(top + ph + 16) << "\" text-anchor=\"middle\" font-size=\"11\">"
      << html_escape(fmt_num(t)) << "</text>";
  }
  s << "<text x=\"" << coord(left + pw / 2) << "\" y=\"" << coord(H - 6) << "\" text-anchor=\"middle\" font-size=\"12\">"
    << html_escape(opt.x_label) << "</text>";
  s << "<text transform=\"translate(14," << coord(top + ph / 2) << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">"
    << html_escape(opt.y_label) << "</text>";

  // lines: a non-finite point breaks the line; lone points and sparse series get dots
  double lx = left;
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& se = series[i];
    const char* color = kPalette[i % (sizeof kPalette / sizeof *kPalette)];
    size_t n_finite = 0;
    for (const auto& [x, y] : se.points) n_finite += std::isfinite(x) && std::isfinite(y);
    if (n_finite == 0) continue;
    std::vector<std::vector<std::pair<double, double>>> runs(1);
    for (const auto& [x, y] : se.points) {
      if (std::isfinite(x) && std::isfinite(y)) runs.back().emplace_back(px(x), py(y));
      else if (!runs.back().empty()) runs.emplace_back();
    }
    for (const auto& run : runs) {
      if (run.size() >= 2) {
        s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.6\" points=\"";
        for (size_t k = 0; k < run.size(); ++k) s << (k ? " " : "") << coord(run[k].first) << ',' << coord(run[k].second);
        s << "\"/>";
      }
      if (run.size() == 1 || n_finite <= 40)
        for (const auto& [cx, cy] : run)
          s << "<circle cx=\"" << coord(cx) << "\" cy=\"" << coord(cy) << "\" r=\"2.6\" fill=\"" << color << "\"/>";
    }
    // legend entry, left to right under the title
    s << "<rect x=\"" << coord(lx) << "\" y=\"28\" width=\"12\" height=\"4\" fill=\"" << color << "\"/>";
    s << "<text x=\"" << coord(lx + 16) << "\" y=\"34\" font-size=\"11\">" << html_escape(se.name) << "</text>";
    lx += 26 + 6.5 * static_cast<double>(se.name.size());
  }
  s << "</svg>";
  return s.str();
}

std::string svg_bar_chart(const std::vector<std::string>& series, const std::vector<BarGroup>& groups,
                          const ChartOptions& opt) {
  const double W = opt.width, H = opt.height;
  const double left = 62, right = 14, top = 46, bottom = 42;
  const double pw = W - left - right, ph = H - top - bottom;
  std::ostringstream s;
  svg_open(s, opt);
  s << "<rect x=\"" << coord(left) << "\" y=\"" << coord(top) << "\" width=\"" << coord(pw) << "\" height=\""
    << coord(ph) << "\" fill=\"none\" stroke=\"#888\"/>";
  double hi = 0;
  for (const auto& g : groups)
    for (double v : g.values)
      if (std::isfinite(v)) hi = std::max(hi, v);
  Axis ay = nice_axis(0, hi > 0 ? hi : 1);
  auto py = [&](double y) { return top + (1 - (y - ay.lo) / (ay.hi - ay.lo)) * ph; };
  for (double t : ay.ticks) {
    s << "<line x1=\"" << coord(left) << "\" x2=\"" << coord(left + pw) << "\" y1=\"" << coord(py(t)) << "\" y2=\""
      << coord(py(t)) << "\" stroke=\"#e4e4e4\"/>";
    s << "<text x=\"" << coord(left - 5) << "\" y=\"" << coord(py(t) + 4) << "\" text-anchor=\"end\" font-size=\"11\">"
      << html_escape(fmt_num(t)) << "</text>";
  }
  s << "<text transform=\"translate(14," << coord(top + ph / 2) << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">"
    << html_escape(opt.y_label) << "</text>";
  const double gw = groups.empty() ? pw : pw / static_cast<double>(groups.size());
  const double bw = series.empty() ? 0 : gw * 0.8 / static_cast<double>(series.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    const double gx = left + static_cast<double>(g) * gw;
    for (size_t i = 0; i < series.size() && i < groups[g].values.size(); ++i) {
      const double v = groups[g].values[i];
      if (!std::isfinite(v)) continue;
      const double x = gx + gw * 0.1 + static_cast<double>(i) * bw, y = py(std::max(0.0, v));
      s << "<rect x=\"" << coord(x) << "\" y=\"" << coord(y) << "\" width=\"" << coord(bw) << "\" height=\""
        << coord(top + ph - y) << "\" fill=\"" << kPalette[i % (sizeof kPalette / sizeof *kPalette)] << "\"/>";
      s << "<text x=\"" << coord(x + bw / 2) << "\" y=\"" << coord(y - 3) << "\" text-anchor=\"middle\" font-size=\"10\">"
        << html_escape(fmt_num(v, 3)) << "</text>";
    }
    s << "<text x=\"" << coord(gx + gw / 2) << "\" y=\"" << coord(top + ph + 16) << "\" text-anchor=\"middle\" font-size=\"11\">"
      << html_escape(groups[g].name) << "</text>";
  }
  double lx = left;
  for (size_t i = 0; i < series.size(); ++i) {
    s << "<rect x=\"" << coord(lx) << "\" y=\"26\" width=\"10\" height=\"10\" fill=\""
      << kPalette[i % (sizeof kPalette / sizeof *kPalette)] << "\"/>";
    s << "<text x=\"" << coord(lx + 14) << "\" y=\"35\" font-size=\"11\">" << html_escape(series[i]) << "</text>";
    lx += 24 + 6.5 * static_cast<double>(series[i].size());
  }
  s << "</svg>";
  return s.str();
}

// =================================================================================================
// The report.

namespace {

std::optional<json> read_json(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  try {
    return json::parse(read_file(p));
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable or half-written: shown as missing
  }
}

// One JSON object per line; a malformed line (e.g. the last one of a run still writing) is skipped.
std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      json j = json::parse(line);
      if (j.is_object()) out.push_back(std::move(j));
    } catch (const std::exception&) {
    }
  }
  return out;
}

std::string scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return fmt_num(v.get<double>(), 6);
  if (v.is_null()) return "–";
  return v.dump();
}

// Nested objects flattened into "a.b.c" -> value rows (arrays of scalars shown inline).
void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& rows) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), rows);
  } else {
    rows.emplace_back(prefix.empty() ? "value" : prefix, scalar_text(j));
  }
}

std::string kv_table(const json& j, const std::string& key_header = "key", const std::string& value_header = "value") {
  std::vector<std::pair<std::string, std::string>> rows;
  flatten(j, "", rows);
  if (rows.empty()) return "<p class=\"missing\">empty</p>";
  std::string s = "<table class=\"kv\"><tr><th>" + html_escape(key_header) + "</th><th>" + html_escape(value_header) +
                  "</th></tr>";
  for (auto& [k, v] : rows) s += "<tr><td>" + html_escape(k) + "</td><td class=\"num\">" + html_escape(v) + "</td></tr>";
  return s + "</table>";
}

std::string missing(const std::string& what) {
  return "<p class=\"missing\">" + html_escape(what) + ": not run yet</p>";
}

const std::vector<std::string>& default_stages() {
  static const std::vector<std::string> s = {"01-tokenizer", "02-data",   "03-pretrain", "04-problems", "05-sft",
                                             "06-prefs",     "07-reward", "08-ppo",      "09-eval"};
  return s;
}

struct Run {
  fs::path dir;
  std::optional<json> pipeline, summary;
  std::vector<std::string> stages;  // folder names in order

  // The folder of stage `name` ("pretrain" -> O/03-pretrain), whether or not it exists yet.
  fs::path stage(const std::string& name) const {
    for (const auto& st : stages) {
      size_t dash = st.find('-');
      if (dash != std::string::npos && st.substr(dash + 1) == name) return dir / st;
    }
    return dir / name;
  }
  bool done(const fs::path& stage_dir) const {
    std::error_code ec;
    return fs::exists(stage_dir / "DONE", ec);
  }
};

Run load_run(const fs::path& dir) {
  Run r;
  r.dir = dir;
  r.pipeline = read_json(dir / "pipeline.json");
  r.summary = read_json(dir / "summary.json");
  if (r.pipeline && r.pipeline->is_object() && r.pipeline->contains("stages") && (*r.pipeline)["stages"].is_array())
    for (const auto& s : (*r.pipeline)["stages"])
      if (s.is_string()) r.stages.push_back(s.get<std::string>());
  if (r.stages.empty()) r.stages = default_stages();
  // Stage folders present on disk but not listed (e.g. an older layout) are shown too.
  std::error_code ec;
  std::vector<std::string> extra;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (e.is_directory(ec) && n.size() > 3 && std::isdigit(static_cast<unsigned char>(n[0])) &&
        std::isdigit(static_cast<unsigned char>(n[1])) && n[2] == '-' &&
        std::find(r.stages.begin(), r.stages.end(), n) == r.stages.end())
      extra.push_back(n);
  }
  std::sort(extra.begin(), extra.end());
  r.stages.insert(r.stages.end(), extra.begin(), extra.end());
  return r;
}

// metrics.jsonl of a stage: <stage>/metrics.jsonl, else the first one below it (a nested run.dir).
std::optional<fs::path> find_metrics(const fs::path& stage_dir) {
  std::error_code ec;
  if (fs::is_regular_file(stage_dir / "metrics.jsonl", ec)) return stage_dir / "metrics.jsonl";
  if (!fs::is_directory(stage_dir, ec)) return std::nullopt;
  std::vector<fs::path> found;
  for (auto it = fs::recursive_directory_iterator(stage_dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->path().filename() == "metrics.jsonl" && it->is_regular_file(ec)) found.push_back(it->path());
  if (found.empty()) return std::nullopt;
  std::sort(found.begin(), found.end());
  return found.front();
}

Series metric_series(const std::vector<json>& lines, const std::string& key, const std::string& label = "") {
  Series s{label.empty() ? key : label, {}};
  for (const auto& l : lines) {
    auto st = l.find("step");
    auto v = l.find(key);
    if (st == l.end() || v == l.end() || !st->is_number() || !v->is_number()) continue;
    s.points.emplace_back(st->get<double>(), v->get<double>());
  }
  return s;
}

struct ChartSpec {
  std::string title, y_label;
  std::vector<std::string> keys;
};

// The charts each trainer's metrics feed; a chart whose keys never occur is left out.
std::vector<ChartSpec> chart_specs(const std::string& stage) {
  if (stage == "ppo")
    return {{"PPO reward and its parts", "reward", {"reward", "reward_rm", "reward_exec", "safety_penalty"}},
            {"KL to the reference", "KL", {"kl", "kl_coef"}},
            {"Pass rate and safety", "rate", {"pass_rate", "safety_violations"}},
            {"PPO losses", "loss", {"loss", "policy_loss", "value_loss", "val_loss"}},
            {"Entropy and clip fraction", "value", {"entropy", "clipfrac"}},
            {"Collapse and credit: per prompt, distinct samples / K, solved by >= 1, by all; value EV", "fraction",
             {"distinct_completions", "prompts_solved", "prompts_all_passed", "explained_variance"}},
            {"Training problems seen (distinct) and visits each", "count", {"problems_seen", "visits_per_problem"}},
            {"Response length", "tokens", {"response_length"}}};
  if (stage == "reward")
    return {{"Reward model loss", "loss", {"loss", "val_loss"}},
            {"Reward model accuracy", "accuracy", {"accuracy", "val_accuracy"}}};
  return {{"Loss (" + stage + ")", "cross-entropy", {"loss", "val_loss"}},
          {"Learning rate (" + stage + ")", "lr", {"lr"}}};
}

std::string stage_status_html(const Run& run, const std::string& folder) {
  std::error_code ec;
  fs::path p = run.dir / folder;
  if (run.done(p)) return "<span class=\"ok\">done</span>";
  if (fs::is_directory(p, ec)) return "<span class=\"running\">started, not finished</span>";
  return "<span class=\"missing\">not run yet</span>";
}

std::string compact_summary(const json& j) {
  std::vector<std::pair<std::string, std::string>> rows;
  flatten(j, "", rows);
  std::string s;
  for (size_t i = 0; i < rows.size() && i < 8; ++i) s += (i ? ", " : "") + rows[i].first + "=" + rows[i].second;
  if (rows.size() > 8) s += ", …";
  return s;
}

std::string section_stages(const Run& run) {
  std::string s = "<h2 id=\"stages\">Stages</h2><table><tr><th>stage</th><th>status</th><th>seconds</th>"
                  "<th>summary (DONE)</th></tr>";
  for (const auto& st : run.stages) {
    std::string summary, secs;
    if (auto d = read_json(run.dir / st / "DONE")) {
      summary = compact_summary(*d);
      if (d->is_object() && d->contains("seconds") && (*d)["seconds"].is_number())
        secs = fmt::format("{:.1f}", (*d)["seconds"].get<double>());
    }
    s += "<tr><td>" + html_escape(st) + "</td><td>" + stage_status_html(run, st) + "</td><td class=\"num\">" +
         secs + "</td><td class=\"small\">" + html_escape(summary) + "</td></tr>";
  }
  return s + "</table>";
}

bool is_model_map(const json& j) { return j.is_object() && !j.empty(); }

// models[m][set][k] when every level is there, else null.
const json* metric_of(const json& models, const std::string& m, const std::string& set, const std::string& k) {
  return models[m].is_object() && models[m].contains(set) && models[m][set].is_object() && models[m][set].contains(k)
             ? &models[m][set][k]
             : nullptr;
}

// The paired difference of each model to the one before on `set` (summary["paired"], written by
// the pipeline) as one table row; empty without one.
std::string paired_row(const json& summary, const std::string& set, const std::vector<std::string>& names) {
  if (!summary.contains("paired") || !summary["paired"].is_object() || !summary["paired"].contains(set) ||
      !summary["paired"][set].is_object())
    return "";
  const json& paired = summary["paired"][set];
  std::string s = "<tr><td>Δ pass@1, paired (95% CI)</td>";
  for (const auto& m : names) {
    std::string cell = "–";
    for (auto it = paired.begin(); it != paired.end(); ++it)
      if (it.key().rfind(m + "-", 0) == 0 && it.value().is_object() && it.value().contains("pass@1") &&
          it.value()["pass@1"].is_number() && it.value().contains("ci95") && it.value()["ci95"].is_number()) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%+.3f ± %.3f vs ", it.value()["pass@1"].get<double>(),
                      it.value()["ci95"].get<double>());
        cell = buf + it.key().substr(m.size() + 1);
      }
    s += "<td class=\"num\">" + html_escape(cell) + "</td>";
  }
  return s + "</tr>";
}

std::string section_passk(const Run& run) {
  std::string s = "<h2 id=\"passk\">pass@k: M0 → M1 → M2</h2>";
  if (!run.summary || !run.summary->is_object() || !run.summary->contains("models") ||
      !is_model_map((*run.summary)["models"]))
    return s + missing("evaluation (summary.json)");
  const json& models = (*run.summary)["models"];
  std::vector<std::string> names;
  for (auto it = models.begin(); it != models.end(); ++it) names.push_back(it.key());
  std::sort(names.begin(), names.end());
  // every evaluation set any model has, and every metric of that set
  std::map<std::string, std::vector<std::string>> sets;
  for (const auto& m : names)
    if (models[m].is_object())
      for (auto it = models[m].begin(); it != models[m].end(); ++it) {
        auto& keys = sets[it.key()];
        if (it.value().is_object())
          for (auto k = it.value().begin(); k != it.value().end(); ++k)
            if (std::find(keys.begin(), keys.end(), k.key()) == keys.end()) keys.push_back(k.key());
      }
  if (sets.empty()) return s + missing("evaluation sets");
  s += "<div class=\"sets\">";
  for (auto& [set, keys] : sets) {
    // pass@1, pass@10, pass@100 in numeric order, then anything else
    std::stable_sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
      bool pa = a.rfind("pass@", 0) == 0, pb = b.rfind("pass@", 0) == 0;
      if (pa != pb) return pa;
      if (pa) return std::atof(a.c_str() + 5) < std::atof(b.c_str() + 5);
      return false;
    });
    s += "<div><h3>" + html_escape(set) + "</h3><table class=\"passk\"><tr><th>metric</th>";
    for (const auto& m : names) s += "<th>" + html_escape(m) + "</th>";
    s += "</tr>";
    for (const auto& k : keys) {
      double best = -INFINITY;
      for (const auto& m : names) {
        const json* v = metric_of(models, m, set, k);
        if (v && v->is_number()) best = std::max(best, v->get<double>());
      }
      s += "<tr><td>" + html_escape(k) + "</td>";
      for (const auto& m : names) {
        const json* v = metric_of(models, m, set, k);
        if (!v) {
          s += "<td class=\"missing\">–</td>";
          continue;
        }
        // the best pass@k of the row (not its interval; nothing is best when every model has 0)
        const bool passk = k.size() > 5 && k.rfind("pass@", 0) == 0 &&
                           k.find_first_not_of("0123456789", 5) == std::string::npos;
        const bool top = passk && best > 0 && v->is_number() && v->get<double>() == best;
        s += std::string("<td class=\"num") + (top ? " best" : "") + "\">" + html_escape(scalar_text(*v)) + "</td>";
      }
      s += "</tr>";
    }
    s += paired_row(*run.summary, set, names) + "</table></div>";
  }
  s += "</div>";
  // pass@1 of every model on every set, side by side
  std::vector<BarGroup> groups;
  for (const auto& [set, keys] : sets) {
    BarGroup g{set, {}};
    for (const auto& m : names) {
      const json* v = metric_of(models, m, set, "pass@1");
      g.values.push_back(v && v->is_number() ? v->get<double>() : NAN);
    }
    groups.push_back(std::move(g));
  }
  s += "<div class=\"charts\"><figure>" + svg_bar_chart(names, groups, {"pass@1 by evaluation set", "", "pass@1"}) +
       "</figure></div>";
  return s;
}

std::string section_data(const Run& run) {
  std::string s = "<h2 id=\"data\">Data</h2><div class=\"grid\">";
  // tokenizer
  s += "<div><h3>Tokenizer</h3>";
  if (auto d = read_json(run.stage("tokenizer") / "DONE")) s += kv_table(*d);
  else s += missing("tokenizer");
  s += "</div>";
  // corpus filters and tokens
  s += "<div><h3>Corpus (data prepare)</h3>";
  fs::path data = run.stage("data");
  std::optional<json> st = read_json(data / "data" / "stats.json");
  if (!st) st = read_json(data / "stats.json");
  if (st && st->is_object()) {
    json files = json::object();
    for (const char* k : {"files_in", "files_kept", "bytes_kept"})
      if (st->contains(k)) files[k] = (*st)[k];
    s += kv_table(files);
    if (st->contains("dropped")) s += "<h4>Dropped by filter</h4>" + kv_table((*st)["dropped"], "filter", "files");
    if (st->contains("tokens")) s += "<h4>Tokens</h4>" + kv_table((*st)["tokens"], "split", "tokens");
    json rest = json::object();
    for (auto it = st->begin(); it != st->end(); ++it)
      if (!files.contains(it.key()) && it.key() != "dropped" && it.key() != "tokens") rest[it.key()] = it.value();
    if (!rest.empty()) s += "<h4>Other</h4>" + kv_table(rest);
  } else {
    s += missing("data statistics");
  }
  s += "</div>";
  // problems
  s += "<div><h3>Problems</h3>";
  fs::path pr = run.stage("problems");
  std::optional<json> ps = read_json(pr / "problems_stats.json");
  if (!ps) ps = read_json(pr / "DONE");
  if (ps) s += kv_table(*ps, "origin / reason", "count");
  else s += missing("problems");
  s += "</div>";
  // preferences
  s += "<div><h3>Preferences</h3>";
  if (auto d = read_json(run.stage("prefs") / "DONE")) s += kv_table(*d, "count", "value");
  else s += missing("preferences");
  s += "</div></div>";
  return s;
}

std::string section_training(const Run& run) {
  std::string s = "<h2 id=\"training\">Training curves</h2>";
  const std::vector<std::pair<std::string, std::string>> trainers = {
      {"pretrain", "Pretraining (M0)"}, {"sft", "Supervised fine-tuning (M1)"}, {"reward", "Reward model"},
      {"ppo", "PPO (M2)"}};
  for (const auto& [name, title] : trainers) {
    s += "<h3>" + html_escape(title) + "</h3>";
    auto mp = find_metrics(run.stage(name));
    if (!mp) {
      s += missing(title);
      continue;
    }
    std::vector<json> lines = read_jsonl(*mp);
    std::string charts;
    for (const auto& spec : chart_specs(name)) {
      std::vector<Series> series;
      for (const auto& k : spec.keys) {
        Series se = metric_series(lines, k);
        if (!se.points.empty()) series.push_back(std::move(se));
      }
      if (series.empty()) continue;
      charts += "<figure>" + svg_line_chart(series, {spec.title, "step", spec.y_label}) + "</figure>";
    }
    if (charts.empty()) s += "<p class=\"missing\">no metrics logged yet</p>";
    else s += "<div class=\"charts\">" + charts + "</div>";
  }
  return s;
}

std::string sample_html(const json& l) {
  std::string id = l.contains("task_id") ? scalar_text(l["task_id"]) : "?";
  std::string result = l.contains("result") ? scalar_text(l["result"]) : "";
  bool passed = l.value("passed", false);
  std::string completion = l.contains("completion") && l["completion"].is_string() ? l["completion"].get<std::string>() : "";
  if (completion.size() > 3000) completion = completion.substr(0, 3000) + "\n… (cut)";
  return std::string("<div class=\"sample\"><div class=\"") + (passed ? "ok" : "bad") + "\">" + html_escape(id) +
         ": " + html_escape(result.empty() ? (passed ? "passed" : "failed") : result) + "</div><pre>" +
         html_escape(completion) + "</pre></div>";
}

std::string section_samples(const Run& run) {
  std::string s = "<h2 id=\"samples\">Samples</h2>";
  fs::path ev = run.stage("eval");
  std::error_code ec;
  if (!fs::is_directory(ev, ec)) return s + missing("evaluation samples");
  std::vector<fs::path> models;
  for (const auto& e : fs::directory_iterator(ev, ec))
    if (e.is_directory(ec)) models.push_back(e.path());
  std::sort(models.begin(), models.end());
  bool any = false;
  for (const auto& m : models) {
    std::vector<fs::path> sets;
    for (const auto& e : fs::directory_iterator(m, ec))
      if (e.is_directory(ec)) sets.push_back(e.path());
    std::sort(sets.begin(), sets.end());
    std::string body;
    for (const auto& set : sets) {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(set, ec))
        if (e.is_regular_file(ec) && ends_with(e.path().filename().string(), "_results.jsonl")) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      if (files.empty()) continue;
      // the first two passing and the first two failing samples (best and worst)
      std::vector<json> pass, fail;
      int64_t n = 0, n_pass = 0;
      for (const auto& f : files)
        for (auto& l : read_jsonl(f)) {
          ++n;
          bool p = l.value("passed", false);
          n_pass += p;
          auto& bucket = p ? pass : fail;
          if (bucket.size() < 2) bucket.push_back(std::move(l));
        }
      body += "<h4>" + html_escape(set.filename().string()) + " <span class=\"small\">(" + std::to_string(n_pass) + " of " +
              std::to_string(n) + " samples passed)</span></h4>";
      for (const auto& l : pass) body += sample_html(l);
      for (const auto& l : fail) body += sample_html(l);
    }
    if (body.empty()) continue;
    any = true;
    s += "<details open><summary>" + html_escape(m.filename().string()) + "</summary>" + body + "</details>";
  }
  if (!any) s += missing("evaluation samples");
  return s;
}

std::string section_reproduce(const Run& run) {
  std::string s = "<h2 id=\"reproduce\">Reproduce</h2>";
  if (!run.pipeline || !run.pipeline->is_object()) return s + missing("pipeline (pipeline.json)");
  const json& p = *run.pipeline;
  if (p.contains("command")) s += "<h3>Command</h3><pre>" + html_escape(scalar_text(p["command"])) + "</pre>";
  if (p.contains("config")) s += "<h3>Config</h3><pre>" + html_escape(scalar_text(p["config"])) + "</pre>";
  return s;
}

const char* kCss = R"(
body{font-family:sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#222;background:#fafafa}
h1{margin-bottom:4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:bold;background:#e6f4e6}
.missing{color:#999;font-style:italic}.ok{color:#1a7f1a}.bad{color:#b22}.running{color:#c77700}.small{font-size:85%}
pre{background:#f0f0f0;border:1px solid #ddd;padding:8px;overflow-x:auto;white-space:pre-wrap;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:16px}
.grid>div{min-width:0}table.kv{max-width:100%}table.kv td{overflow-wrap:anywhere}
.sets{display:flex;flex-wrap:wrap;gap:8px 32px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px}
figure{margin:0}svg.chart{width:100%;height:auto;border:1px solid #ddd;font-family:sans-serif}
.sample{margin:6px 0 12px}.sample div{font-weight:bold;font-size:90%}summary{font-weight:bold;cursor:pointer}
nav a{margin-right:12px}
)";

}  // namespace

std::string render_report(const std::string& run_dir) {
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) throw UsageError("report: --run '" + run_dir + "' is not a folder");
  Run run = load_run(run_dir);
  std::string started;
  if (run.pipeline && run.pipeline->is_object() && run.pipeline->contains("started")) {
    const json& st = (*run.pipeline)["started"];
    if (st.is_number()) {  // seconds since the epoch
      std::time_t t = static_cast<std::time_t>(st.get<double>());
      char b[32];
      std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
      started = b;
    } else {
      started = scalar_text(st);
    }
  }
  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                  "<title>codex-train report</title><style>" +
                  std::string(kCss) + "</style></head><body>";
  h += "<h1>codex-train pipeline report</h1><p class=\"small\">run folder <code>" +
       html_escape(fs::absolute(run_dir).lexically_normal().string()) + "</code>" +
       (started.empty() ? "" : " · started " + html_escape(started)) + " · report written " + when + "</p>";
  h += "<nav><a href=\"#stages\">stages</a><a href=\"#passk\">pass@k</a><a href=\"#data\">data</a>"
       "<a href=\"#training\">training</a><a href=\"#samples\">samples</a><a href=\"#reproduce\">reproduce</a></nav>";
  h += section_stages(run);
  h += section_passk(run);
  h += section_data(run);
  h += section_training(run);
  h += section_samples(run);
  h += section_reproduce(run);
  h += "</body></html>\n";
  return h;
}

std::string write_report(const std::string& run_dir) {
  std::string html = render_report(run_dir);
  fs::path out = fs::path(run_dir) / "report.html";
  write_file_atomic(out, html);
  return out.string();
}

}  // namespace codex::report
