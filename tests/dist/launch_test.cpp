// scripts/launch.sh: environment, output prefixes, failure propagation, signal forwarding.
#include <catch2/catch.hpp>

#include "helpers.h"

using codex::test::run_shell;
using codex::test::shell_quote;

static std::string launcher() { return shell_quote(std::string(CODEX_SOURCE_DIR) + "/scripts/launch.sh"); }

TEST_CASE("launch.sh sets torchrun's variables and prefixes output", "[dist][launch]") {
  auto r = run_shell(launcher() + " --nproc-per-node 2 --nnodes 2 --node-rank 1 --master-addr 127.0.0.1 --master-port 29999 -- "
                                  "bash -c 'echo \"$RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT\"'");
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("[rank 2] 2 4 0 2 127.0.0.1 29999") != std::string::npos);
  REQUIRE(r.out.find("[rank 3] 3 4 1 2 127.0.0.1 29999") != std::string::npos);
}

TEST_CASE("launch.sh stops the others when a rank fails, leaving no process", "[dist][launch]") {
  // rank 1 fails; rank 0 ignores SIGTERM, so the launcher must escalate to SIGKILL.
  auto r = run_shell(launcher() + " --nproc-per-node 2 --grace 1 -- bash -c "
                                  "'if [ $RANK = 1 ]; then sleep 0.3; exit 7; fi; trap \"\" TERM; exec sleep 4242'");
  REQUIRE(r.code == 7);
  REQUIRE(r.err.find("rank 1 exited with status 7") != std::string::npos);
  REQUIRE(!codex::test::process_running("sleep 4242"));  // nothing left behind
}

TEST_CASE("launch.sh forwards SIGTERM to every rank", "[dist][launch]") {
  auto r = run_shell("(" + launcher() + " --nproc-per-node 2 -- bash -c "
                     "'trap \"echo stopped-$RANK; exit 0\" TERM; sleep 4343 & wait') & L=$!; sleep 1; kill -TERM $L; wait $L");
  REQUIRE(r.code == 143);
  REQUIRE(r.out.find("stopped-0") != std::string::npos);
  REQUIRE(r.out.find("stopped-1") != std::string::npos);
  REQUIRE(!codex::test::process_running("sleep 4343"));
}

TEST_CASE("launch.sh waits for ranks that stop slowly, a second signal kills them", "[dist][launch]") {
  // Ranks take 2 s to stop after SIGTERM (a checkpoint being written): the launcher waits for them.
  auto slow = run_shell("(" + launcher() + " --nproc-per-node 2 --grace 1 -- bash -c "
                        "'trap \"sleep 2; echo saved-$RANK; exit 1\" TERM; sleep 4444 & wait') & L=$!; sleep 1; "
                        "kill -TERM $L; wait $L");
  REQUIRE(slow.code == 143);
  REQUIRE(slow.out.find("saved-0") != std::string::npos);
  REQUIRE(slow.out.find("saved-1") != std::string::npos);
  REQUIRE(!codex::test::process_running("sleep 4444"));
  // Ranks that ignore SIGTERM: the second signal kills them.
  auto stuck = run_shell("(" + launcher() + " --nproc-per-node 2 -- bash -c "
                         "'trap \"\" TERM; exec sleep 4545') & L=$!; sleep 1; kill -TERM $L; sleep 0.5; "
                         "kill -TERM $L; wait $L");
  REQUIRE(stuck.code == 143);
  REQUIRE(stuck.err.find("again, killing all ranks") != std::string::npos);
  REQUIRE(!codex::test::process_running("sleep 4545"));
}

TEST_CASE("launch.sh rejects bad arguments with exit 2", "[dist][launch]") {
  REQUIRE(run_shell(launcher() + " -- true").code == 2);
  REQUIRE(run_shell(launcher() + " --nproc-per-node x -- true").code == 2);
  REQUIRE(run_shell(launcher() + " --nproc-per-node 2 --nnodes 2 --node-rank 2 -- true").code == 2);
  REQUIRE(run_shell(launcher() + " --nproc-per-node 2").code == 2);
}
