// The HTML report: escaping, the SVG chart (coordinates computed by hand), rendering the fixture
// run folder and partial ones, the `report` command, and a real browser (headless Chromium).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "pipeline/report.h"
#include "util/error.h"

using namespace codex;
using namespace codex::test;
namespace fs = std::filesystem;

namespace {

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

const fs::path kFixture = fs::path(CODEX_TEST_DIR) / "pipeline" / "fixtures" / "run";

// A writable copy of the fixture (tests never write into the source tree).
fs::path copy_fixture(const TempDir& tmp) {
  fs::path dst = tmp / "run";
  fs::copy(kFixture, dst, fs::copy_options::recursive);
  return dst;
}

}  // namespace

TEST_CASE("report: html_escape makes markup inert and leaves other bytes alone", "[report]") {
  CHECK(report::html_escape("") == "");
  CHECK(report::html_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;");
  CHECK(report::html_escape("</pre><script>x</script>") == "&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;");
  CHECK(report::html_escape("&amp;") == "&amp;amp;");  // escaped once more, never interpreted
  CHECK(report::html_escape("déjà vu\n\tλ") == "déjà vu\n\tλ");
}

TEST_CASE("report: a chart without points is a framed 'no data' chart", "[report]") {
  std::string svg = report::svg_line_chart({}, {"Empty", "step", "loss"});
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.size() >= 6);
  CHECK(svg.substr(svg.size() - 6) == "</svg>");
  CHECK(svg.find("no data") != std::string::npos);
  CHECK(count(svg, "<polyline") == 0);
  CHECK(count(svg, "<circle") == 0);
  // a series whose every point is non-finite is no data either
  std::string nan_only = report::svg_line_chart({{"loss", {{1, NAN}, {INFINITY, 2}}}}, {"T", "x", "y"});
  CHECK(nan_only.find("no data") != std::string::npos);
  CHECK(count(nan_only, "<circle") == 0);
}

TEST_CASE("report: one point is a dot in the middle of the plot", "[report]") {
  // 560 x 280 with margins left 62, right 14, top 46, bottom 42: the plot is 484 x 192. A lone
  // value v gets the window v +- 10% (x = 5 -> [4.5, 5.5] widened to ticks [4.4, 5.6]), so the dot
  // sits at the centre: (62 + 242, 46 + 96).
  std::string svg = report::svg_line_chart({{"loss", {{5, 2}}}}, {"One", "step", "loss"});
  CHECK(count(svg, "<polyline") == 0);
  CHECK(count(svg, "<circle") == 1);
  CHECK(svg.find("cx=\"304.00\" cy=\"142.00\"") != std::string::npos);
  CHECK(svg.find("no data") == std::string::npos);
}

TEST_CASE("report: many points are one polyline with ticks, labels and a legend", "[report]") {
  std::vector<std::pair<double, double>> pts;
  for (int i = 0; i <= 100; ++i) pts.emplace_back(i * 0.1, i * 0.1);  // y = x on [0, 10]
  std::string svg = report::svg_line_chart({{"train <loss>", pts}}, {"Loss & more", "step", "loss"});
  CHECK(count(svg, "<polyline") == 1);
  CHECK(count(svg, "<circle") == 0);  // 101 points: no dots
  // x and y both span [0, 10]: ticks every 2; (0, 0) is the plot's bottom-left corner (62, 238)
  // and (10, 10) its top-right corner (546, 46).
  CHECK(svg.find("points=\"62.00,238.00 ") != std::string::npos);
  CHECK(svg.find(" 546.00,46.00\"") != std::string::npos);
  for (const char* tick : {">0<", ">2<", ">4<", ">6<", ">8<", ">10<"}) CHECK(count(svg, tick) == 2);
  CHECK(svg.find(">step<") != std::string::npos);
  CHECK(svg.find("Loss &amp; more") != std::string::npos);  // title escaped
  CHECK(svg.find("train &lt;loss&gt;") != std::string::npos);  // legend escaped
  CHECK(svg.find("<loss>") == std::string::npos);
}

TEST_CASE("report: non-finite points are skipped and break the line", "[report]") {
  // (0,0) | NaN | (2,2) (3,3): a lone dot, then a two-point line; 3 dots since the series is short
  std::string svg = report::svg_line_chart({{"a", {{0, 0}, {1, NAN}, {2, 2}, {3, 3}, {INFINITY, 1}}}}, {"T", "x", "y"});
  CHECK(count(svg, "<polyline") == 1);
  CHECK(count(svg, "<circle") == 3);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
  // the axis spans the finite points only: x in [0, 3] -> ticks 0, 0.5, ..., 3 ('3' present, no '4')
  CHECK(svg.find(">3<") != std::string::npos);
  CHECK(svg.find(">4<") == std::string::npos);
}

TEST_CASE("report: bars start at zero and are as tall as their value", "[report]") {
  // y from 0 to 1 (ticks every 0.2) over the 192-unit-high plot; one group spans the 484-unit
  // plot width, its two bars share the middle 80%: 193.6 units each, from x = 62 + 48.4.
  std::string svg = report::svg_bar_chart({"M0", "M<1>"}, {{"set", {0.5, 1.0}}}, {"Bars", "", "pass@1"});
  CHECK(svg.find("<rect x=\"110.40\" y=\"142.00\" width=\"193.60\" height=\"96.00\"") != std::string::npos);
  CHECK(svg.find("<rect x=\"304.00\" y=\"46.00\" width=\"193.60\" height=\"192.00\"") != std::string::npos);
  CHECK(svg.find(">0.5<") != std::string::npos);
  CHECK(svg.find("M&lt;1&gt;") != std::string::npos);
  // a missing value is no bar; all zeros still give a 0..1 axis
  std::string gaps = report::svg_bar_chart({"M0", "M1"}, {{"a", {NAN, 0.0}}}, {"Bars", "", "pass@1"});
  CHECK(count(gaps, "height=\"0.00\"") == 1);
  CHECK(gaps.find("nan") == std::string::npos);
  CHECK(gaps.find(">1<") != std::string::npos);
}

TEST_CASE("report: the fixture run renders every section", "[report]") {
  std::string html = report::render_report(kFixture.string());
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  // pass@k table: both sets, the three models, values and the best one marked
  CHECK(html.find("practice-heldout") != std::string::npos);
  CHECK(html.find("humaneval") != std::string::npos);
  for (const char* m : {">M0<", ">M1<", ">M2<"}) CHECK(html.find(m) != std::string::npos);
  CHECK(html.find("<td class=\"num best\">0.26</td>") != std::string::npos);
  // best of each pass@k row: practice pass@1 (M2) and pass@10 (M2), humaneval pass@10 (M1 = M2); not
  // humaneval pass@1, where every model has 0
  CHECK(count(html, "num best") == 4);
  CHECK(html.find("<td class=\"num\">0.05</td>") != std::string::npos);
  // the paired differences: a row on the practice set (M0 has no model before it), none on humaneval
  CHECK(html.find("<td>Δ pass@1, paired (95% CI)</td><td class=\"num\">–</td><td class=\"num\">+0.130 ± 0.050 vs M0</td>"
                  "<td class=\"num\">+0.080 ± 0.100 vs M1</td>") != std::string::npos);
  CHECK(count(html, "paired (95% CI)") == 1);
  // data statistics
  CHECK(html.find("tokens_per_byte") != std::string::npos);
  CHECK(html.find("avg_line_length") != std::string::npos);
  CHECK(html.find("origin.docstring") != std::string::npos);
  CHECK(html.find("from_execution") != std::string::npos);
  // charts: pass@1 bars, pretrain loss + lr, sft loss (no lr logged), reward loss + accuracy, 6 PPO
  CHECK(count(html, "<svg") == 12);
  CHECK(html.find("pass@1 by evaluation set") != std::string::npos);
  CHECK(html.find("PPO reward and its parts") != std::string::npos);
  CHECK(html.find("KL to the reference") != std::string::npos);
  // samples: a passing and a failing one per model; the hostile completion is text, not markup
  CHECK(html.find("practice/7: passed") != std::string::npos);
  CHECK(html.find("practice/9: timed out") != std::string::npos);
  CHECK(html.find("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("return x &amp; y &lt; z") != std::string::npos);
  // the command and config, escaped
  CHECK(html.find("codex-train pipeline --corpus data/corpus") != std::string::npos);
  CHECK(html.find("# a &lt;tag&gt; &amp; &quot;quotes&quot; stay text") != std::string::npos);
  CHECK(html.find("started 2025-11-30 01:00:00 UTC") != std::string::npos);  // pipeline.json's epoch seconds
  // every stage finished
  CHECK(count(html, "<span class=\"ok\">done</span>") == 9);
  CHECK(html.find("not run yet") == std::string::npos);
  // self-contained: no scripts, no external resources
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(count(html, "http") == count(html, "http://www.w3.org/2000/svg"));
}

TEST_CASE("report: partial and empty run folders render, missing parts said", "[report]") {
  TempDir tmp;
  // empty folder
  fs::create_directories(tmp / "empty");
  std::string empty = report::render_report((tmp / "empty").string());
  CHECK(count(empty, "<span class=\"missing\">not run yet</span>") == 9);
  CHECK(empty.find("evaluation (summary.json): not run yet") != std::string::npos);
  CHECK(empty.find("pipeline (pipeline.json): not run yet") != std::string::npos);
  CHECK(count(empty, "<svg") == 0);
  // a run stopped during SFT: pretrain done, sft started (metrics, no DONE), nothing later
  fs::path run = copy_fixture(tmp);
  for (const char* st : {"06-prefs", "07-reward", "08-ppo", "09-eval"}) fs::remove_all(run / st);
  fs::remove(run / "summary.json");
  fs::remove(run / "05-sft" / "DONE");
  std::string html = report::render_report(run.string());
  CHECK(count(html, "<span class=\"ok\">done</span>") == 4);
  CHECK(count(html, "started, not finished") == 1);
  CHECK(count(html, "<span class=\"missing\">not run yet</span>") == 4);
  CHECK(html.find("Reward model: not run yet") != std::string::npos);
  CHECK(html.find("evaluation samples: not run yet") != std::string::npos);
  CHECK(count(html, "<svg") == 3);  // pretrain 2 + sft 1
  // a half-written summary.json is shown as missing, not an error
  write_text(run / "summary.json", "{\"models\": {\"M0\"");
  CHECK_NOTHROW(report::render_report(run.string()));
  CHECK_THROWS_AS(report::render_report((tmp / "nope").string()), UsageError);
}

TEST_CASE("report: the command writes report.html, and a bad folder is exit 2 with one line", "[report][cli]") {
  TempDir tmp;
  fs::path run = copy_fixture(tmp);
  auto r = run_cli("report --run " + shell_quote(run.string()));
  REQUIRE(r.code == 0);
  CHECK(fs::exists(run / "report.html"));
  CHECK(r.out.find("report.html") != std::string::npos);
  CHECK(read_text(run / "report.html").find("PPO reward and its parts") != std::string::npos);
  auto bad = run_cli("report --run " + shell_quote((tmp / "missing").string()));
  CHECK(bad.code == 2);
  CHECK(bad.err.find("codex-train: error: report: --run") != std::string::npos);
  CHECK(count(bad.err, "\n") == 1);
  auto none = run_cli("report");
  CHECK(none.code == 2);
}

// Opens the fixture's report in headless Chromium: the screenshot must not be blank and the page
// must log nothing to the console. A control page with a deliberate script error proves the
// console check can fail.
TEST_CASE("report: headless Chromium renders the report without console errors", "[report][browser]") {
  if (run_shell("command -v chromium").code != 0) {
    WARN("SKIPPED: chromium is not installed (scripts/build.sh --test-deps installs it)");
    return;
  }
  TempDir tmp;
  fs::path run = copy_fixture(tmp);
  std::string page = report::write_report(run.string());
  auto shoot = [&](const std::string& file, const std::string& png) {
    // its own profile folder: parallel tests and a user's browser never share state
    return run_shell("timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
                     "--user-data-dir=" + shell_quote((tmp / ("profile-" + png)).string()) +
                     " --enable-logging=stderr --v=0 --window-size=1200,1600 --screenshot=" +
                     shell_quote((tmp / png).string()) + " " + shell_quote("file://" + file));
  };
  auto console_lines = [](const std::string& err) {
    std::string out;
    size_t pos = 0;
    for (size_t nl; (nl = err.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      std::string line = err.substr(pos, nl - pos);
      if (line.find(":CONSOLE") != std::string::npos) out += line + "\n";
    }
    return out;
  };

  write_text(tmp / "control.html", "<!DOCTYPE html><html><body><p>x</p><script>notDefinedAnywhere();</script></body></html>");
  auto control = shoot((tmp / "control.html").string(), "control.png");
  REQUIRE(control.code == 0);
  CHECK(console_lines(control.err).find("notDefinedAnywhere") != std::string::npos);

  auto r = shoot(page, "report.png");
  REQUIRE(r.code == 0);
  REQUIRE(fs::exists(tmp / "report.png"));
  CHECK(console_lines(r.err) == "");
  auto st = run_shell("python3 " + shell_quote(std::string(CODEX_TEST_DIR) + "/pipeline/png_stats.py") + " " +
                      shell_quote((tmp / "report.png").string()));
  REQUIRE(st.code == 0);
  auto j = nlohmann::json::parse(st.out);
  CHECK(j["width"] == 1200);
  CHECK(j["height"] == 1600);
  // text, tables, coloured lines: far more than a blank or single-colour page
  CHECK(j["colors"].get<int>() > 50);
  CHECK(j["non_background_fraction"].get<double>() > 0.05);
}

TEST_CASE("report: the preferences and data tables stay inside their column in a 1200-px window", "[report][browser]") {
  if (run_shell("command -v chromium").code != 0) {
    WARN("SKIPPED: chromium is not installed (scripts/build.sh --test-deps installs it)");
    return;
  }
  TempDir tmp;
  fs::path run = copy_fixture(tmp);
  // The preferences summary a real run writes: nested counts with long keys.
  write_text(run / "06-prefs" / "DONE",
             R"({"given": 0, "from_execution": {"passed": 210, "failed": 301, "raised": 113, "does not parse": 12,)"
             R"( "problems_with_pairs": 213, "prompts_without_pair": 65, "pairs": 852}, "pairs": 852,)"
             R"( "seconds": 123.45678901234})"
             "\n");
  std::string html = report::render_report(run.string());
  // Measured in the page: how far any table reaches past the box that holds it, and the page width.
  const std::string probe =
      "<script>var worst=0;document.querySelectorAll('table').forEach(function(t){"
      "worst=Math.max(worst,t.getBoundingClientRect().right-t.parentElement.getBoundingClientRect().right);});"
      "document.body.setAttribute('data-overflow',String(Math.ceil(worst)));"
      "document.body.setAttribute('data-width',String(document.documentElement.scrollWidth));</script>";
  html.insert(html.rfind("</body>"), probe);
  write_text(tmp / "probe.html", html);
  auto r = run_shell("timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=" +
                     shell_quote((tmp / "profile").string()) + " --window-size=1200,1600 --dump-dom " +
                     shell_quote("file://" + (tmp / "probe.html").string()));
  REQUIRE(r.code == 0);
  auto attr = [&](const std::string& name) {
    const auto at = r.out.find(name + "=\"");
    REQUIRE(at != std::string::npos);
    return std::stoi(r.out.substr(at + name.size() + 2));
  };
  CHECK(attr("data-overflow") <= 0);
  CHECK(attr("data-width") <= 1200);
}
