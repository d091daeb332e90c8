// Kill the embedded order service with SIGKILL at seeded random moments, restart it, let it
// finish, then check the saga log and every participant's own ledger.
//
//   SAGA_CRASH_CYCLES=1000 build/tests/crash/crash_test   (500 sagas per cycle by default)
// runs the long version; SAGA_SEED=N repeats a run.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "testutil/child_process.hpp"
#include "testutil/consistency.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

TEST(CrashTest, OrderSystemEndsConsistentAfterRepeatedSigkillOfTheService) {
  const int cycles = env_int("SAGA_CRASH_CYCLES", 30);
  const int sagas = env_int("SAGA_CRASH_SAGAS", 500 * cycles);
  // Sagas in flight; scripts/test.sh lowers it under ThreadSanitizer, whose slowness would
  // otherwise turn the 1 s step timeouts into a storm of retries.
  const std::string window = std::to_string(env_int("SAGA_CRASH_WINDOW", 1000));
  testutil::SeededRandom rnd;
  std::cout << "seed " << rnd.seed() << ", " << cycles << " kill cycles, " << sagas << " sagas\n";
  const std::string dir =
      (std::filesystem::path(testutil::temp_path("_")).parent_path() / "run").string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string log = dir + "/service.log";
  auto argv = [&](int run) {
    return std::vector<std::string>{
        CRASH_ORDER_SERVICE, dir,    "--sagas", std::to_string(sagas),
        "--window",          window, "--seed",  std::to_string(rnd.seed() % 100000 + run)};
  };

  int killed = 0, finished_early = 0;
  for (int c = 0; c < cycles; ++c) {
    testutil::ChildProcess service(argv(c), log);
    const auto life = std::chrono::milliseconds(rnd.uniform(0, 700));
    if (auto code = service.wait(life)) {
      ASSERT_EQ(*code, 0) << "service failed on its own; see " << log;
      ++finished_early;  // everything had ended: kill the next one sooner
      continue;
    }
    service.kill(SIGKILL);
    const auto code = service.wait(std::chrono::seconds(10));
    if (code == 0) {  // it ended on its own between the wait and the kill
      ++finished_early;
      continue;
    }
    ASSERT_EQ(code, 128 + SIGKILL);
    ++killed;
  }
  testutil::ChildProcess last(argv(cycles), log);
  auto code = last.wait(std::chrono::seconds(240));
  ASSERT_TRUE(code.has_value()) << "the last run did not finish; see " << log;
  ASSERT_EQ(*code, 0) << "see " << log;

  std::vector<std::string> ids;
  for (int i = 0; i < sagas; ++i) ids.push_back("o" + std::to_string(i));
  auto report = testutil::check_order_system(
      testutil::OrderSystemFiles::in(dir), ids,
      [](const std::string& id) { return std::stoi(id.substr(1)) % 10 == 0; });
  std::cout << killed << " kills, " << finished_early << " runs ended on their own; "
            << report.summary() << "\n";
  for (size_t i = 0; i < report.violations.size() && i < 20; ++i)
    ADD_FAILURE() << report.violations[i];
  EXPECT_TRUE(report.violations.empty());
  EXPECT_EQ(report.completed + report.compensated, sagas);
  EXPECT_GE(report.compensated, sagas / 10);
  EXPECT_GE(killed, cycles / 2) << "too few runs were killed: raise SAGA_CRASH_SAGAS";
}

}  // namespace
}  // namespace saga
