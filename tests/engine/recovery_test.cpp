// Crash and restart on a real SQLite file. The participants are other services: they live on
// while the orchestrator dies. A crash drops whatever the engine had not committed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "saga/sqlite_store.hpp"
#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using testutil::FaultyStore;
using testutil::FaultyTransport;

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path = testutil::temp_path("saga.db");
    ASSERT_OK(participants.start());
  }

  void open() {
    engine.reset();
    store.reset();
    sqlite.reset();
    auto s = SqliteStore::open({.path = path});
    ASSERT_OK(s);
    sqlite = std::move(s.value());
    store = std::make_unique<FaultyStore>(sqlite.get());
    EngineOptions opts;
    opts.manual = true;
    opts.definitions = {testutil::place_order_definition()};
    opts.log = [](const std::string&) {};
    auto e = Engine::open(opts, *store, transport, clock);
    ASSERT_OK(e);
    engine = std::move(e.value());
  }
  void crash() { engine.reset(); }

  void start(const std::string& id, bool decline) {
    engine->start({.definition = "PlaceOrder",
                   .saga_id = id,
                   .input = nlohmann::json{{"order_id", id}, {"decline", decline}}.dump()},
                  [](auto) {});
  }
  SagaStatus status(const std::string& id) {
    auto s = sqlite->find(id);
    return s.ok() && s->has_value() ? (*s)->status : SagaStatus::kRunning;
  }
  // Commands sent more than once under different ids for the same step would show as a2/c2.
  void expect_only_first_attempts() {
    for (const auto& id : transport.sent_ids()) {
      CommandIdParts parts;
      ASSERT_TRUE(parse_command_id(id, &parts));
      EXPECT_EQ(parts.attempt, 1) << id << " was dispatched again under a new id";
    }
  }

  std::string path;
  MemoryTransport bus;
  testutil::OrderParticipants participants{bus};
  FaultyTransport transport{&bus};
  FakeClock clock;
  std::unique_ptr<SqliteStore> sqlite;
  std::unique_ptr<FaultyStore> store;
  std::unique_ptr<Engine> engine;
};

TEST_F(RecoveryTest, ResendsOutboxUnderSameIdAfterCrashBetweenCommitAndSend) {
  open();
  transport.drop_all(true);  // the process dies between the commit and the send
  start("o1", false);
  engine->poll();
  EXPECT_EQ(sqlite->events("o1").value().size(), 2u);  // committed: started + dispatched
  crash();
  transport.drop_all(false);
  open();
  engine->poll();
  EXPECT_EQ(status("o1"), SagaStatus::kCompleted);
  EXPECT_EQ(transport.sent_ids().front(), "o1/reserve_inventory/a1");
  expect_only_first_attempts();
  EXPECT_EQ(participants.ledger.count(participants.ledger.reserved, "o1"), 1);
}

TEST_F(RecoveryTest, ContinuesAfterCrashBetweenSendAndReply) {
  open();
  transport.hold(true);
  start("o2", false);
  engine->poll();
  crash();
  // The broker delivers the command after the orchestrator died; its reply finds nobody.
  transport.release_all();
  EXPECT_EQ(participants.ledger.count(participants.ledger.reserved, "o2"), 1);
  transport.hold(false);
  open();
  engine->poll();
  EXPECT_EQ(status("o2"), SagaStatus::kCompleted);
  EXPECT_EQ(participants.ledger.count(participants.ledger.reserved, "o2"), 1);
  EXPECT_GE(participants.inventory.stats().duplicates, 1u);  // answered from its record
  expect_only_first_attempts();
}

TEST_F(RecoveryTest, ResumesCompensationAfterCrashDuringCompensation) {
  open();
  transport.hold(true);
  start("o3", /*decline=*/true);
  engine->poll();
  // Let messages through until ReleaseReservation is on its way.
  for (;;) {
    auto sent = transport.sent();
    bool compensating =
        std::any_of(sent.begin(), sent.end(), [](const Message& m) { return m.compensation; });
    if (compensating || transport.held() == 0) break;
    transport.release_one();
    engine->poll();
  }
  // ReleaseReservation was delivered; the orchestrator dies before its reply is committed.
  ASSERT_EQ(participants.ledger.count(participants.ledger.released, "o3"), 1)
      << ::testing::PrintToString(transport.sent_ids());
  crash();
  transport.release_all();
  transport.hold(false);
  open();
  engine->poll();
  EXPECT_EQ(status("o3"), SagaStatus::kCompensated);
  EXPECT_EQ(participants.ledger.count(participants.ledger.released, "o3"), 1)
      << "the compensation must not run twice";
  EXPECT_EQ(participants.inventory.stats().compensations_run, 1u);
  expect_only_first_attempts();
}

TEST_F(RecoveryTest, TimersSurviveRestart) {
  open();
  participants.payment.stop();
  start("o4", false);
  engine->poll();
  crash();
  open();
  ASSERT_OK(participants.payment.start());
  clock.advance(Duration(1000));  // the attempt timeout armed before the crash fires now
  engine->poll();
  for (int i = 0; i < 5; ++i) {
    clock.advance(Duration(500));
    engine->poll();
  }
  EXPECT_EQ(status("o4"), SagaStatus::kCompleted);
}

TEST_F(RecoveryTest, SagaOfAnUnregisteredVersionIsLeftAloneUntilItIsRegisteredAgain) {
  open();
  transport.hold(true);
  start("old", false);
  engine->poll();
  crash();
  transport.drop_all(true);
  transport.release_all();  // lost in transit
  transport.drop_all(false);
  transport.hold(false);
  {
    // A deploy that forgot version 1: the saga must not be touched, its outbox row kept.
    EngineOptions opts;
    opts.manual = true;
    opts.definitions = {testutil::place_order_definition(2)};
    opts.log = [](const std::string&) {};
    auto e = Engine::open(opts, *store, transport, clock);
    ASSERT_OK(e);
    (*e)->poll();
    auto again = (*e)->start({.definition = "PlaceOrder", .version = 1, .saga_id = "old"});
    EXPECT_FALSE(again.get().ok());
    auto dup = (*e)->start({.definition = "PlaceOrder", .saga_id = "old", .input = "{}"});
    (*e)->poll();
    EXPECT_EQ(dup.get().status().code(), Code::kFailedPrecondition);
    (*e)->close();
  }
  EXPECT_EQ(sqlite->recover().value().outbox.size(), 1u);
  open();  // version 1 is back
  engine->poll();
  EXPECT_EQ(status("old"), SagaStatus::kCompleted);
  expect_only_first_attempts();
}

TEST_F(RecoveryTest, SagaWhoseDefinitionChangedUnderItsVersionIsLeftUntouched) {
  open();
  transport.hold(true);
  start("edited", false);
  engine->poll();
  crash();
  transport.drop_all(true);
  transport.release_all();
  transport.drop_all(false);
  transport.hold(false);
  const auto events_before = sqlite->events("edited").value().size();
  {
    // Same name and version, another step order: driving the saga on it would mix the two.
    Definition edited =
        Definition::Builder("PlaceOrder", 1)
            .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
            .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
            .step("confirm_order", "orders.ConfirmOrder")
            .retry({RetryPolicy::kForever, Duration(100), 2.0, Duration(1000), 0.2})
            .build()
            .value();
    ASSERT_NE(fingerprint(edited), fingerprint(testutil::place_order_definition()));
    std::vector<std::string> logs;
    EngineOptions opts;
    opts.manual = true;
    opts.definitions = {edited};
    opts.log = [&](const std::string& line) { logs.push_back(line); };
    auto e = Engine::open(opts, *store, transport, clock);
    ASSERT_OK(e);
    (*e)->poll();
    clock.advance(Duration(5000));
    (*e)->poll();
    ASSERT_FALSE(logs.empty());
    EXPECT_NE(logs[0].find("started on another definition of PlaceOrder v1"), std::string::npos)
        << logs[0];
    auto dup = (*e)->start({.definition = "PlaceOrder", .saga_id = "edited", .input = "{}"});
    (*e)->poll();
    EXPECT_EQ(dup.get().status().code(), Code::kFailedPrecondition);
    (*e)->close();
  }
  EXPECT_EQ(sqlite->events("edited").value().size(), events_before);
  EXPECT_TRUE(transport.sent_ids().size() <= 1u);  // nothing dispatched on the edited definition
  open();                                          // the definition it started with is back
  engine->poll();
  EXPECT_EQ(status("edited"), SagaStatus::kCompleted);
}

// The sweep: crash right after the k-th commit for every k, restart, finish. Every saga must
// reach the end state it reaches without a crash; no step runs twice; nothing gets a new id.
TEST_F(RecoveryTest, EverySagaReachesTheSameEndStateWhicheverCommitTheCrashFollows) {
  const int kSagas = 6;
  for (int k = 0; k < 14; ++k) {
    SCOPED_TRACE("crash after commit " + std::to_string(k));
    path = testutil::temp_path("sweep-" + std::to_string(k) + ".db");
    MemoryTransport local_bus;
    testutil::OrderParticipants world(local_bus);
    ASSERT_OK(world.start());
    FaultyTransport tx(&local_bus);
    auto run_engine = [&](bool inject) {
      auto s = SqliteStore::open({.path = path});
      ASSERT_OK(s);
      FaultyStore faulty(s->get());
      if (inject) faulty.crash_after(k);
      EngineOptions opts;
      opts.manual = true;
      opts.definitions = {testutil::place_order_definition()};
      opts.log = [](const std::string&) {};
      auto e = Engine::open(opts, faulty, tx, clock);
      ASSERT_OK(e);
      if (inject) {
        for (int i = 0; i < kSagas; ++i)
          (*e)->start({.definition = "PlaceOrder",
                       .saga_id = "s" + std::to_string(i),
                       .input = nlohmann::json{{"decline", i % 3 == 0}}.dump()},
                      [](auto) {});
      }
      (*e)->poll();
      // Engine destroyed here without close(): a crash.
    };
    run_engine(true);
    run_engine(false);
    auto store = SqliteStore::open({.path = path});
    ASSERT_OK(store);
    for (int i = 0; i < kSagas; ++i) {
      const std::string id = "s" + std::to_string(i);
      const bool decline = i % 3 == 0;
      auto sum = (*store)->find(id);
      ASSERT_OK(sum);
      if (!sum->has_value()) {
        // Crashed before the start was committed: the caller never got an answer; fine.
        ASSERT_EQ(k, 0) << id;
        continue;
      }
      EXPECT_EQ((*sum)->status, decline ? SagaStatus::kCompensated : SagaStatus::kCompleted) << id;
      auto& l = world.ledger;
      EXPECT_EQ(l.count(l.reserved, id), 1) << id;
      EXPECT_EQ(l.count(l.released, id), decline ? 1 : 0) << id;
      EXPECT_EQ(l.count(l.confirmed, id), decline ? 0 : 1) << id;
      EXPECT_EQ(l.count(l.charged, id), 0 + (decline ? 0 : 1)) << id;
    }
    for (const auto& id : tx.sent_ids()) {
      CommandIdParts parts;
      ASSERT_TRUE(parse_command_id(id, &parts));
      EXPECT_EQ(parts.attempt, 1) << id;
    }
    EXPECT_EQ(world.inventory.stats().compensations_run, static_cast<uint64_t>(k == 0 ? 0 : 2));
  }
}

}  // namespace
}  // namespace saga
