// The order system over Kafka with the orchestrator and the participants as separate processes,
// each killed with SIGKILL at seeded random moments and restarted; the broker in a third process
// lives on. Then the saga log and every participant's own ledger are checked.
//
//   SAGA_KAFKA_CRASH_CYCLES=20 build/tests/kafka/kafka_crash_test   (default 4)
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "testutil/child_process.hpp"
#include "testutil/consistency.hpp"
#include "testutil/ledger_system.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using namespace std::chrono_literals;
using testutil::ChildProcess;

TEST(KafkaCrash, OrchestratorAndParticipantProcessesKilledWithSigkillEndConsistent) {
  const char* env = std::getenv("SAGA_KAFKA_CRASH_CYCLES");
  const int cycles = env ? std::atoi(env) : 4;
  const int sagas = 100 * (cycles + 1);
  testutil::SeededRandom rnd;
  const auto dir = std::filesystem::path(testutil::temp_path("_")).parent_path() / "run";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string d = dir.string();

  ChildProcess broker(
      {SAGA_MOCK_BROKER, "--partitions", "4", "--topic", "orchestrator.replies", "--topic",
       "inventory.commands", "--topic", "payment.commands", "--topic", "orders.commands"},
      d + "/broker.log");
  auto line = testutil::wait_for_line(d + "/broker.log", "bootstrap=", 10s);
  ASSERT_TRUE(line.has_value());
  const std::string bootstrap = line->substr(10);

  int lives = 0;
  auto start_participants = [&] {
    const std::string log = d + "/participants-" + std::to_string(++lives) + ".log";
    auto p = std::make_unique<ChildProcess>(
        std::vector<std::string>{LEDGER_PARTICIPANTS, d, "--bootstrap", bootstrap}, log);
    EXPECT_TRUE(testutil::wait_for_line(log, "ready", 60s).has_value()) << "see " << log;
    return p;
  };
  auto participants = start_participants();
  auto service_argv = [&](int run) {
    return std::vector<std::string>{
        CRASH_ORDER_SERVICE, d,        "--sagas", std::to_string(sagas),
        "--window",          "100",    "--seed",  std::to_string(rnd.seed() % 100000 + run),
        "--bootstrap",       bootstrap};
  };

  int service_kills = 0, participant_kills = 0;
  for (int c = 0; c < cycles; ++c) {
    ChildProcess service(service_argv(c), d + "/service.log");
    if (auto code = service.wait(std::chrono::milliseconds(rnd.uniform(1500, 5000)))) {
      ASSERT_EQ(*code, 0) << "see " << d << "/service.log";
      continue;
    }
    if (c % 2 == 1) {  // the participants die too, a moment before the orchestrator
      participants->kill(SIGKILL);
      ASSERT_EQ(participants->wait(10s), 128 + SIGKILL);
      ++participant_kills;
    }
    service.kill(SIGKILL);
    ASSERT_EQ(service.wait(10s), 128 + SIGKILL);
    ++service_kills;
    if (!participants->running()) participants = start_participants();
  }
  ChildProcess last(service_argv(cycles), d + "/service.log");
  auto code = last.wait(300s);
  ASSERT_TRUE(code.has_value()) << "the last run did not finish; see " << d << "/service.log";
  ASSERT_EQ(*code, 0) << "see " << d << "/service.log";
  participants->kill(SIGTERM);
  EXPECT_EQ(participants->wait(30s), 0);

  std::vector<std::string> ids;
  for (int i = 0; i < sagas; ++i) ids.push_back("o" + std::to_string(i));
  auto report = testutil::check_order_system(testutil::OrderSystemFiles::in(d), ids,
                                             testutil::order_declined);
  std::cout << service_kills << " orchestrator kills, " << participant_kills
            << " participant kills; " << report.summary() << "\n";
  for (size_t i = 0; i < report.violations.size() && i < 20; ++i)
    ADD_FAILURE() << report.violations[i];
  EXPECT_EQ(report.completed + report.compensated, sagas);
}

}  // namespace
}  // namespace saga
