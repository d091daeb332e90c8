// The delivery contract: a message is settled (acknowledged, or dead-lettered with a reason)
// once its effect is durable; one never settled is delivered again when its channel is
// subscribed again, as a broker's consumer offsets would have it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

Message to(const std::string& channel, const std::string& id) {
  Message m;
  m.channel = channel;
  m.saga_id = "s";
  m.command_id = id;
  return m;
}

TEST(MemoryTransport, UnsettledMessageIsDeliveredAgainWhenItsChannelIsSubscribedAgain) {
  MemoryTransport bus;
  std::vector<std::string> seen;
  ASSERT_OK(bus.subscribe("c", [&](Message m, Ack ack) {
    seen.push_back(m.command_id);
    if (m.command_id != "kept") ack();
  }));
  bus.send(to("c", "kept"), [](Status) {});
  bus.send(to("c", "settled"), [](Status) {});
  EXPECT_EQ(bus.unsettled("c"), 1u);
  bus.unsubscribe("c");  // the consumer restarts

  std::vector<std::string> again;
  ASSERT_OK(bus.subscribe("c", [&](Message m, Ack ack) {
    again.push_back(m.command_id);
    ack();
  }));
  EXPECT_EQ(again, std::vector<std::string>{"kept"});
  EXPECT_EQ(bus.unsettled("c"), 0u);
}

TEST(MemoryTransport, DeadLetterKeepsTheMessageWithItsReasonAndIsNotDeliveredAgain) {
  MemoryTransport bus;
  ASSERT_OK(bus.subscribe("c", [&](Message, Ack ack) { ack.dead_letter("not for us"); }));
  bus.send(to("c", "poison"), [](Status) {});
  bus.unsubscribe("c");
  int delivered = 0;
  ASSERT_OK(bus.subscribe("c", [&](Message, Ack) { ++delivered; }));
  EXPECT_EQ(delivered, 0);
  auto dead = bus.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].message.command_id, "poison");
  EXPECT_EQ(dead[0].reason, "not for us");
}

class EngineAcks : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(participants.start());
    EngineOptions opts;
    opts.manual = true;
    opts.definitions = {testutil::place_order_definition()};
    opts.log = [](const std::string&) {};
    auto e = Engine::open(opts, store, transport, clock);
    ASSERT_OK(e);
    engine = std::move(*e);
  }
  void start(const std::string& id) {
    engine->start({.definition = "PlaceOrder",
                   .saga_id = id,
                   .input = nlohmann::json{{"order_id", id}}.dump()},
                  [](auto) {});
  }

  MemoryStore mem;
  testutil::FaultyStore store{&mem};
  MemoryTransport bus;
  testutil::FaultyTransport transport{&bus};
  testutil::OrderParticipants participants{bus};
  FakeClock clock;
  std::unique_ptr<Engine> engine;
};

TEST_F(EngineAcks, ReplyIsSettledOnlyOnceTheDecisionItLedToIsCommitted) {
  transport.hold(true);
  start("a");
  engine->poll();  // SagaStarted committed; ReserveItems held
  store.fail_next(1);
  transport.hold(false);
  transport.release_all();  // inventory answers at once
  engine->poll();           // the decision on the reply fails to commit
  EXPECT_EQ(bus.unsettled("orchestrator.replies"), 1u);
  clock.advance(Duration(1000));  // the commit is retried
  engine->poll();
  EXPECT_EQ(bus.unsettled("orchestrator.replies"), 0u);
}

TEST_F(EngineAcks, ReplyWhoseDecisionWasNeverCommittedComesAgainToTheNextEngine) {
  transport.hold(true);
  start("b");
  engine->poll();
  store.crash();  // from now nothing commits: the process is as good as dead
  transport.hold(false);
  transport.release_all();
  engine->poll();
  engine.reset();
  EXPECT_EQ(bus.unsettled("orchestrator.replies"), 1u);

  testutil::FaultyStore fresh{&mem};  // a new process on the same log
  EngineOptions opts;
  opts.manual = true;
  opts.definitions = {testutil::place_order_definition()};
  opts.log = [](const std::string&) {};
  auto e = Engine::open(opts, fresh, transport, clock);
  ASSERT_OK(e);
  (*e)->poll();
  EXPECT_EQ(bus.unsettled("orchestrator.replies"), 0u);
  auto& l = participants.ledger;
  EXPECT_EQ(l.count(l.reserved, "b"), 1);  // the redelivered reply, not a second reservation
  EXPECT_EQ((*e)->state("b")->steps[0].phase, StepPhase::kSucceeded);
}

TEST_F(EngineAcks, ReplyForASagaThatNeverExistedIsADeadLetterButALateDuplicateIsNot) {
  auto f = engine->start({.definition = "PlaceOrder", .saga_id = "done", .input = "{}"});
  engine->poll();
  ASSERT_EQ(f.get()->status, SagaStatus::kCompleted);
  for (const std::string& saga : {std::string("done"), std::string("ghost")}) {
    Message m;
    m.kind = Message::Kind::kReply;
    m.channel = "orchestrator.replies";
    m.saga_id = saga;
    m.command_id = saga + "/reserve_inventory/a1";
    bus.send(m, [](Status) {});
  }
  engine->poll();
  EXPECT_EQ(bus.unsettled("orchestrator.replies"), 0u);
  auto dead = bus.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].message.saga_id, "ghost");
  EXPECT_EQ(dead[0].reason, "no saga 'ghost'");
}

TEST(ParticipantAcks, CommandIsSettledAfterItsTransactionAndUnknownTypesAreDeadLettered) {
  MemoryTransport bus;
  testing::VolatileParticipantStore record;
  Participant p(bus, "inventory", record);
  p.on("Reserve", [](const CommandContext&) { return ParticipantReply::ok(); });
  ASSERT_OK(p.start());
  ASSERT_OK(bus.subscribe("r", [](Message, Ack ack) { ack(); }));
  bus.send(testutil::command("inventory", "Reserve", "s", "s/reserve/a1", "r"), [](Status) {});
  bus.send(testutil::command("inventory", "Teleport", "s", "s/teleport/a1", "r"), [](Status) {});
  Message junk = testutil::command("inventory", "Reserve", "s", "not-an-id", "r");
  bus.send(junk, [](Status) {});
  EXPECT_EQ(bus.unsettled("inventory"), 0u);
  auto dead = bus.dead_letters();
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].reason, "no handler for Teleport at inventory");
  EXPECT_EQ(dead[1].reason, "command id is not one an orchestrator sends");
}

}  // namespace
}  // namespace saga
