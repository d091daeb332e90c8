// The samples' services on the durable participant SDK: a re-delivered command is answered
// from the record, before and after a restart, and never wedges the service's connection.
#include "services/services.hpp"

#include <gtest/gtest.h>

#include "saga/memory.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

Message reserve(const std::string& saga, int attempt, bool compensation = false) {
  Message m;
  m.kind = Message::Kind::kCommand;
  m.channel = "inventory";
  m.type = compensation ? "ReleaseReservation" : "ReserveItems";
  m.saga_id = saga;
  m.command_id = command_id(saga, "reserve_inventory", compensation, attempt);
  m.reply_to = "replies";
  m.compensation = compensation;
  m.payload =
      compensation ? R"({"reservation_id":"res-)" + saga + "\"}" : R"({"sku":"widget","qty":2})";
  return m;
}

TEST(SampleServices, RedeliveredReserveItemsIsAnsweredFromTheRecordAndLaterCommandsWork) {
  const std::string path = testutil::temp_path("inventory.db");
  MemoryTransport bus;
  std::vector<Message> replies;
  ASSERT_OK(bus.subscribe("replies", [&](Message m, Ack ack) {
    ack();
    replies.push_back(std::move(m));
  }));
  {
    samples::InventoryService inventory(bus, path, 10);
    ASSERT_OK(inventory.start());
    bus.send(reserve("o1", 1), [](Status) {});
    bus.send(reserve("o1", 1), [](Status) {});  // the broker delivers it again
    bus.send(reserve("o1", 2), [](Status) {});  // a later attempt of the same step
    bus.send(reserve("o2", 1), [](Status) {});
    EXPECT_EQ(inventory.reservations("held"), 2);
    EXPECT_EQ(inventory.stock("widget"), 6);
  }
  samples::InventoryService restarted(bus, path, 10);  // a process restart
  ASSERT_OK(restarted.start());
  bus.send(reserve("o1", 1), [](Status) {});
  bus.send(reserve("o1", 1, true), [](Status) {});
  bus.send(reserve("o1", 1, true), [](Status) {});
  EXPECT_EQ(restarted.reservations("held"), 1);
  EXPECT_EQ(restarted.reservations("released"), 1);
  EXPECT_EQ(restarted.stock("widget"), 8);
  for (const Message& r : replies) EXPECT_EQ(r.outcome, ReplyOutcome::kOk) << r.error;
}

}  // namespace
}  // namespace saga
