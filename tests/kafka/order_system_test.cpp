// The README's multi-process command (label `kafka`): saga-mock-broker, inventory-service,
// payment-service and order-service as processes; ends consistent in the services' own
// databases and leaves no process behind.
#include <gtest/gtest.h>

#include <filesystem>

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
  // Every process it started is gone.
  auto left = testutil::run_command("pgrep -f '" + data.string() + "' || true");
  EXPECT_EQ(left.out, "") << "still running: " << left.out;
}

}  // namespace
}  // namespace saga
