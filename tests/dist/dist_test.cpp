// c10d process groups and bucketed gradient averaging, 2 Gloo ranks on 127.0.0.1.
#include "dist/dist.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "helpers.h"
#include "train/train_fixture.h"
#include "util/error.h"

using namespace codex;
using codex::test::free_port;
using codex::test::run_shell;
using codex::test::shell_quote;
using codex::test::TempDir;
using codex::test::tiny_run_args;
using codex::test::write_prepared_folder;

namespace {

std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

// Runs this test binary's hidden worker test case under the launcher with 2 ranks.
test::RunResult launch_workers(const std::string& tag, int nproc = 2, const std::string& extra_env = "") {
  return run_shell(extra_env + " " + shell_quote(std::string(CODEX_SOURCE_DIR) + "/scripts/launch.sh") +
                   " --nproc-per-node " + std::to_string(nproc) + " --master-port " + std::to_string(free_port()) +
                   " -- " + shell_quote(self_exe()) + " " + shell_quote(tag));
}

}  // namespace

TEST_CASE("dist env: torchrun, Slurm and Open MPI variables", "[dist]") {
  std::map<std::string, std::string> env{{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                                         {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "1234"}};
  auto getter = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto e = read_dist_env(getter);
  REQUIRE((e.rank == 3 && e.world_size == 4 && e.local_rank == 1 && e.local_world_size == 2));
  REQUIRE((e.master_addr == "10.0.0.1" && e.master_port == 1234 && e.source == "torchrun"));
  REQUIRE(!e.agent_store);
  env["TORCHELASTIC_USE_AGENT_STORE"] = "True";  // torchrun's agent serves the store
  env["TORCHELASTIC_RESTART_COUNT"] = "2";
  e = read_dist_env(getter);
  REQUIRE((e.agent_store && e.store_prefix == "restart2/"));
  env = {{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}, {"SLURM_NTASKS_PER_NODE", "4"}};
  e = read_dist_env(getter);
  REQUIRE((e.rank == 5 && e.world_size == 8 && e.local_rank == 1 && e.source == "slurm"));
  env = {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
         {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}};
  e = read_dist_env(getter);
  REQUIRE((e.rank == 1 && e.world_size == 2 && e.source == "openmpi"));
  env = {};
  REQUIRE(read_dist_env(getter).world_size == 1);
  env = {{"RANK", "2"}, {"WORLD_SIZE", "2"}};
  REQUIRE_THROWS_AS(read_dist_env(getter), UsageError);
  env = {{"RANK", "0"}, {"WORLD_SIZE", "two"}};
  REQUIRE_THROWS_AS(read_dist_env(getter), UsageError);
}

// Hidden worker (run by the launcher, not by ctest): rank r's loss gives gradient (r+1)*x, so the
// average over 2 ranks is 1.5*x; with 2 accumulation micro-steps it is twice that.
TEST_CASE("dist worker: grad sync", "[.dist-gradsync]") {
  auto env = read_dist_env();
  DistConfig cfg;
  cfg.timeout_s = 30;
  cfg.bucket_mb = 0.0001;  // ~100 bytes: forces several buckets
  auto dist = Dist::init(cfg, env, torch::kCPU);
  REQUIRE(dist->world_size() == 2);
  torch::manual_seed(0);
  std::vector<torch::Tensor> params{torch::randn({7, 5}).requires_grad_(), torch::randn({3}).requires_grad_(),
                                    torch::randn({40}).requires_grad_(), torch::randn({2}).requires_grad_()};
  GradSync sync(dist, params, cfg.bucket_mb);
  REQUIRE(sync.num_buckets() >= 2);
  auto loss_of = [&](double scale) {
    auto l = torch::zeros({});
    for (size_t i = 0; i + 1 < params.size(); ++i) l = l + (params[i] * (i + 1.0)).sum() * scale;  // last param unused
    return l;
  };
  double s = dist->rank() + 1.0;
  for (int step = 0; step < 2; ++step) {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    sync.set_sync(false);
    loss_of(s).backward();
    sync.set_sync(true);
    loss_of(s).backward();
    sync.finish();
    for (size_t i = 0; i + 1 < params.size(); ++i)
      REQUIRE(torch::allclose(params[i].grad(), torch::full_like(params[i], 2 * 1.5 * (i + 1.0))));
    REQUIRE((!params.back().grad().defined() || params.back().grad().abs().sum().item<double>() == 0));
  }
  auto t = torch::full({3}, dist->rank() + 1.0);
  dist->all_reduce_sum(t);
  REQUIRE(torch::allclose(t, torch::full({3}, 3.0)));
  auto g = dist->all_gather(torch::full({2}, double(dist->rank())));
  REQUIRE(g.size(0) == 2);
  REQUIRE(g[1][0].item<double>() == 1.0);
}

TEST_CASE("dist: bucketed gradient all-reduce over 2 Gloo ranks", "[dist]") {
  auto r = launch_workers("[.dist-gradsync]");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
}

TEST_CASE("dist worker: world size mismatch", "[.dist-mismatch]") {
  auto env = read_dist_env();
  if (env.rank == 1) env.world_size = 3;  // rank 1 believes in a bigger world
  DistConfig cfg;
  cfg.timeout_s = 5;
  Dist::init(cfg, env, torch::kCPU);
}

TEST_CASE("dist: bad settings fail fast with a clear error", "[dist]") {
  auto r = launch_workers("[.dist-mismatch]");
  REQUIRE(r.code != 0);
  INFO(r.err << r.out);
  REQUIRE(((r.out + r.err).find("world size mismatch") != std::string::npos ||
           (r.out + r.err).find("WORLD_SIZE") != std::string::npos));

  // unreachable master: nothing listens on the port
  DistEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.master_port = free_port();
  DistConfig cfg;
  cfg.timeout_s = 2;
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_AS(Dist::init(cfg, env, torch::kCPU), UsageError);
  REQUIRE(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));

  // port in use: something else already listens there
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(fd, 1);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  env.rank = 0;
  env.master_port = ntohs(a.sin_port);
  try {
    Dist::init(cfg, env, torch::kCPU);
    FAIL("expected an error");
  } catch (const UsageError& e) {
    REQUIRE(std::string(e.what()).find("port in use") != std::string::npos);
  }
  ::close(fd);

  // Through the CLI: exit 2 and exactly one line on stderr (c10d's own retry logging muted).
  TempDir t;
  write_prepared_folder(t / "data");
  auto cli = run_shell("RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port()) + " " +
                       shell_quote(CODEX_BINARY) + " " + tiny_run_args((t / "data").string(), (t / "run").string()) +
                       " dist.timeout_s=2");
  INFO(cli.err);
  REQUIRE(cli.code == 2);
  REQUIRE(cli.err.find("cannot reach the rendezvous") != std::string::npos);
  REQUIRE(std::count(cli.err.begin(), cli.err.end(), '\n') == 1);
}

// Hidden worker: ZeRO-1 against a plain AdamW that every rank runs over all parameters itself.
TEST_CASE("dist worker: zero1", "[.dist-zero1]") {
  auto env = read_dist_env();
  DistConfig cfg;
  cfg.timeout_s = 30;
  auto dist = Dist::init(cfg, env, torch::kCPU);
  REQUIRE(dist->world_size() == 2);
  auto make = [] {
    torch::manual_seed(0);
    return std::vector<torch::Tensor>{torch::randn({7, 5}).requires_grad_(), torch::randn({30}).requires_grad_(),
                                      torch::randn({4, 4}).requires_grad_(), torch::randn({3}).requires_grad_()};
  };
  auto sharded = make(), plain = make();
  torch::optim::AdamW opt_s(sharded, torch::optim::AdamWOptions(0.1).weight_decay(0.1));
  torch::optim::AdamW opt_p(plain, torch::optim::AdamWOptions(0.1).weight_decay(0.1));
  Zero1 zero(dist, sharded);
  // every parameter has one owner, and the split is balanced: 35+30+16+3 = 84 -> 35+19 | 30+...
  REQUIRE(zero.owned_numel(0) + zero.owned_numel(1) == 84);
  REQUIRE(std::abs(zero.owned_numel(0) - zero.owned_numel(1)) <= 35);
  for (int step = 1; step <= 3; ++step) {
    for (auto* ps : {&sharded, &plain})
      for (size_t i = 0; i < ps->size(); ++i) (*ps)[i].mutable_grad() = torch::full_like((*ps)[i], step * (i + 1.0));
    zero.step(opt_s);
    opt_p.step();
    for (size_t i = 0; i < plain.size(); ++i) REQUIRE(torch::equal(sharded[i], plain[i]));
  }
  // This rank holds AdamW state only for what it owns.
  size_t owned = 0;
  for (size_t i = 0; i < sharded.size(); ++i) owned += zero.owner(i) == dist->rank();
  REQUIRE(opt_s.state().size() == owned);
  REQUIRE(owned < sharded.size());
  // Before a checkpoint rank 0 receives every state, equal to the plain optimizer's; after, shards again.
  zero.gather_state(opt_s);
  if (dist->rank() == 0) {
    REQUIRE(opt_s.state().size() == sharded.size());
    for (size_t i = 0; i < sharded.size(); ++i) {
      auto key = [](const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); };
      auto& a = static_cast<torch::optim::AdamWParamState&>(*opt_s.state().at(key(sharded[i])));
      auto& b = static_cast<torch::optim::AdamWParamState&>(*opt_p.state().at(key(plain[i])));
      REQUIRE(a.step() == b.step());
      REQUIRE(torch::equal(a.exp_avg(), b.exp_avg()));
      REQUIRE(torch::equal(a.exp_avg_sq(), b.exp_avg_sq()));
    }
  }
  zero.shard_state(opt_s);
  REQUIRE(opt_s.state().size() == owned);
}

TEST_CASE("dist: ZeRO-1 shards AdamW state and matches plain AdamW exactly", "[dist]") {
  auto r = launch_workers("[.dist-zero1]");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
}
