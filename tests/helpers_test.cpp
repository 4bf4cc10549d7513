#include "helpers.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "util/fs.h"

namespace codex::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "codex-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

void write_text(const std::filesystem::path& p, const std::string& s) {
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

std::string read_text(const std::filesystem::path& p) { return codex::read_file(p); }

RunResult run_shell(const std::string& cmd, const std::string& stdin_data) {
  TempDir t;
  write_text(t / "in", stdin_data);
  std::string full = "(" + cmd + ") <" + shell_quote((t / "in").string()) + " >" + shell_quote((t / "out").string()) +
                     " 2>" + shell_quote((t / "err").string());
  int st = std::system(full.c_str());
  RunResult r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = read_text(t / "out");
  r.err = read_text(t / "err");
  return r;
}

RunResult run_cli(const std::string& args, const std::string& stdin_data) {
  return run_shell(shell_quote(CODEX_BINARY) + " " + args, stdin_data);
}

bool gpu_available() { return torch::cuda::is_available(); }

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool process_running(const std::string& needle) {
  // "[x]yz" matches "xyz" but not the literal "[x]yz" in our own shell's command line.
  std::string pattern = "[" + needle.substr(0, 1) + "]" + needle.substr(1);
  return run_shell("pgrep -f " + shell_quote(pattern)).code == 0;
}

}  // namespace codex::test

TEST_CASE("run_cli captures output and exit code", "[helpers]") {
  auto r = codex::test::run_cli("--help");
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("usage:") != std::string::npos);
  auto bad = codex::test::run_cli("no-such-command");
  REQUIRE(bad.code == 2);
  REQUIRE(bad.err.find("unknown command") != std::string::npos);
}
