// The README's multi-process command (label `kafka`): saga-mock-broker, inventory-service,
// payment-service and order-service as processes; ends consistent in the services' own
// databases and leaves no process behind.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "testutil/child_process.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

TEST(OrderSystem, ThreeServicesAndTheBrokerAsProcessesEndConsistentAndAllStop) {
  const auto data = std::filesystem::path(testutil::temp_path("_")).parent_path() / "data";
  auto r = testutil::run_command("SAGA_DEMO_DATA='" + data.string() + "' timeout 300 bash " +
                                 SAGA_SOURCE_DIR "/samples/order-system.sh " SAGA_BINARY_DIR);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("| consistent"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("inventory.ReleaseReservation"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("retry attempt 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("5 of 5 sagas ended"), std::string::npos) << r.out;
  // Every service it started is gone (their command lines name the data folder).
  for (const auto& proc : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(proc.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(cmdline.find(data.string()), std::string::npos)
        << "still running: " << proc.path().filename() << " " << cmdline;
  }
}

// A service told to stop after its broker vanished still stops (its consumer's close would wait
// for the group coordinator forever).
TEST(OrderSystem, ServiceStopsOnSigtermEvenWhenItsBrokerIsGone) {
  const std::string log = testutil::temp_path("broker.log");
  const std::string out = testutil::temp_path("inventory.out");
  testutil::ChildProcess broker(
      {SAGA_BINARY_DIR "/apps/saga-mock-broker/saga-mock-broker", "--topic", "inventory.commands"},
      log);
  auto line = testutil::wait_for_line(log, "bootstrap=", std::chrono::seconds(10));
  ASSERT_TRUE(line.has_value());
  testutil::ChildProcess service({SAGA_BINARY_DIR "/samples/inventory-service", "--bootstrap",
                                  line->substr(10), "--db", testutil::temp_path("inventory.db")},
                                 out);
  ASSERT_TRUE(testutil::wait_for_line(out, "inventory-service: ready", std::chrono::seconds(60))
                  .has_value());
  // One command handled first, so that there is an offset to commit when it stops.
  const std::string command =
      R"(s1|{"v":1,"kind":"command","type":"ReserveItems","saga_id":"s1",)"
      R"("command_id":"s1/reserve/a1","reply_to":"orchestrator.replies","compensation":false,)"
      R"("payload":{"qty":1}})";
  auto sent = testutil::run_command("echo '" + command + "' | timeout 30 kcat -b " +
                                    line->substr(10) + " -P -t inventory.commands -K '|'");
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  broker.kill(SIGKILL);
  ASSERT_EQ(broker.wait(std::chrono::seconds(10)), 128 + SIGKILL);
  service.kill(SIGTERM);
  EXPECT_EQ(service.wait(std::chrono::seconds(60)), 0) << "see " << out;
}

}  // namespace
}  // namespace saga
