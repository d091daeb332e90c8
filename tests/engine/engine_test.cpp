// The orchestrator loop over the in-memory adapters, in manual mode with a fake clock.
#include "saga/engine.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "saga/memory.hpp"
#include "saga/timeline.hpp"
#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using testutil::FaultyStore;
using testutil::FaultyTransport;
using testutil::OrderParticipants;

std::string order(int n, bool decline = false) {
  return nlohmann::json{
      {"order_id", "o" + std::to_string(n)}, {"amount", 10 * n}, {"decline", decline}}
      .dump();
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(participants.start());
    open();
  }
  void open(EngineOptions opts = {}) {
    engine.reset();
    opts.manual = true;
    opts.definitions = {testutil::place_order_definition()};
    opts.log = [this](const std::string& line) { logs.push_back(line); };
    auto r = Engine::open(std::move(opts), store, transport, clock);
    ASSERT_OK(r);
    engine = std::move(r.value());
  }
  // Starts sagas prefix0..prefix{n-1} without waiting for them.
  void start_many(const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i)
      engine->start(
          {.definition = "PlaceOrder", .saga_id = prefix + std::to_string(i), .input = order(i)},
          [](auto) {});
  }
  // A reply as a participant would send it.
  void send_reply(const std::string& saga_id, const std::string& command_id,
                  const std::string& payload) {
    Message m;
    m.kind = Message::Kind::kReply;
    m.channel = "orchestrator.replies";
    m.saga_id = saga_id;
    m.command_id = command_id;
    m.payload = payload;
    bus.send(m, [](Status) {});
  }
  // Lets `steps` periods of `step` pass, running what falls due after each.
  void pass_time(int steps, Duration step) {
    for (int i = 0; i < steps; ++i) {
      clock.advance(step);
      engine->poll();
    }
  }
  Result<SagaOutcome> run(const std::string& id, const std::string& input) {
    auto f = engine->start({.definition = "PlaceOrder", .saga_id = id, .input = input});
    engine->poll();
    if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
      return Status::Internal("saga did not end");
    return f.get();
  }

  MemoryStore mem;
  FaultyStore store{&mem};
  MemoryTransport bus;
  FaultyTransport transport{&bus};
  FakeClock clock;
  OrderParticipants participants{bus};
  std::unique_ptr<Engine> engine;
  std::vector<std::string> logs;
};

TEST_F(EngineTest, CompletesSagaAndResolvesFuture) {
  auto r = run("order-1", order(1));
  ASSERT_OK(r);
  EXPECT_EQ(r->status, SagaStatus::kCompleted);
  EXPECT_EQ(participants.ledger.count(participants.ledger.confirmed, "order-1"), 1);
  auto ctx = nlohmann::json::parse(r->context);
  EXPECT_EQ(ctx["reservation_id"], "r-order-1");
  EXPECT_EQ(ctx["payment_id"], "p-order-1");
  EXPECT_EQ(engine->metrics().completed, 1u);
  EXPECT_EQ(engine->metrics().active, 0u);
}

TEST_F(EngineTest, FirstSagaOfADefinitionWritesItsTextToTheLogOnce) {
  EXPECT_EQ(run("o-1", order(1))->status, SagaStatus::kCompleted);
  EXPECT_EQ(run("o-2", order(2))->status, SagaStatus::kCompleted);
  const Definition def = testutil::place_order_definition();
  auto defs = store.definitions();
  ASSERT_OK(defs);
  ASSERT_EQ(defs->size(), 1u);
  EXPECT_EQ((*defs)[0].name, "PlaceOrder");
  EXPECT_EQ((*defs)[0].version, def.version);
  EXPECT_EQ((*defs)[0].fingerprint, fingerprint(def));
  EXPECT_EQ((*defs)[0].text, definition_text(def));
  // The saga names the record it ran.
  auto events = store.events("o-2");
  ASSERT_OK(events);
  EXPECT_EQ(events->front().fingerprint, (*defs)[0].fingerprint);
}

TEST_F(EngineTest, OnAcceptedRunsOnceTheStartIsCommittedOrWithTheStartError) {
  std::vector<std::string> seen;
  auto start = [&](const std::string& type, const std::string& id) {
    StartRequest req{.definition = type, .saga_id = id, .input = order(1)};
    req.on_accepted = [&seen, id](Status st) { seen.push_back(id + ":" + st.to_string()); };
    engine->start(std::move(req), [](auto) {});
  };
  start("PlaceOrder", "a");
  EXPECT_TRUE(seen.empty());  // queued, not committed yet
  engine->poll();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], "a:" + Status::Ok().to_string());
  auto found = store.find("a");
  ASSERT_OK(found);
  EXPECT_TRUE(found->has_value());
  start("PlaceOrder", "a");  // joins the running saga
  engine->poll();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1], "a:" + Status::Ok().to_string());
  start("NoSuchSaga", "b");
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_NE(seen[2].find("unknown saga type"), std::string::npos) << seen[2];
}

TEST_F(EngineTest, ASecondStartIsNotAcceptedBeforeTheFirstIsCommitted) {
  std::vector<std::string> seen;
  auto start = [&] {
    StartRequest req{.definition = "PlaceOrder", .saga_id = "d", .input = order(1)};
    req.on_accepted = [&seen](Status st) { seen.push_back(st.to_string()); };
    engine->start(std::move(req), [](auto) {});
  };
  store.fail_next(1);  // the first commit of the start fails, and is retried later
  start();
  engine->poll();
  EXPECT_TRUE(seen.empty());
  start();  // the same saga again: it is live, but its start is not durable yet
  engine->poll();
  EXPECT_TRUE(seen.empty());
  clock.advance(Duration(200));  // the retry commits both
  engine->poll();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], Status::Ok().to_string());
  EXPECT_EQ(seen[1], Status::Ok().to_string());
}

TEST_F(EngineTest, DeclinedPaymentReleasesReservationAndEndsCompensated) {
  auto r = run("order-2", order(2, /*decline=*/true));
  ASSERT_OK(r);
  EXPECT_EQ(r->status, SagaStatus::kCompensated);
  EXPECT_NE(r->reason.find("card declined"), std::string::npos) << r->reason;
  auto& l = participants.ledger;
  EXPECT_EQ(l.count(l.reserved, "order-2"), 1);
  EXPECT_EQ(l.count(l.released, "order-2"), 1);
  EXPECT_TRUE(l.released_ids.count("r-order-2"));
  EXPECT_EQ(l.count(l.refunded, "order-2"), 0);
  EXPECT_EQ(l.count(l.confirmed, "order-2"), 0);
}

TEST_F(EngineTest, StartIsIdempotentOnSagaId) {
  ASSERT_OK(run("order-3", order(3)));
  const auto events = mem.events("order-3").value().size();
  auto again = run("order-3", order(3));
  ASSERT_OK(again);
  EXPECT_EQ(again->status, SagaStatus::kCompleted);
  EXPECT_EQ(mem.events("order-3").value().size(), events);
  EXPECT_EQ(participants.ledger.count(participants.ledger.reserved, "order-3"), 1);
  auto other = run("order-3", order(4));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kAlreadyExists);
}

TEST_F(EngineTest, SecondStartOfRunningSagaJoinsIt) {
  transport.hold(true);
  auto f1 = engine->start({.definition = "PlaceOrder", .saga_id = "j", .input = order(1)});
  auto f2 = engine->start({.definition = "PlaceOrder", .saga_id = "j", .input = order(1)});
  engine->poll();
  transport.hold(false);
  while (transport.release_one()) engine->poll();
  ASSERT_OK(f1.get());
  auto r2 = f2.get();
  ASSERT_OK(r2);
  EXPECT_EQ(r2->status, SagaStatus::kCompleted);
  EXPECT_EQ(participants.ledger.count(participants.ledger.reserved, "j"), 1);
}

TEST_F(EngineTest, BadStartRequestsGetClearErrors) {
  auto unknown = engine->start({.definition = "NoSuchSaga", .saga_id = "x"}).get();
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
  EXPECT_NE(unknown.status().message().find("NoSuchSaga"), std::string::npos);
  auto not_object =
      engine->start({.definition = "PlaceOrder", .saga_id = "x", .input = "[1]"}).get();
  EXPECT_EQ(not_object.status().code(), Code::kInvalidArgument);
  auto huge = engine
                  ->start({.definition = "PlaceOrder",
                           .saga_id = "x",
                           .input = "{\"a\":\"" + std::string(2 << 20, 'x') + "\"}"})
                  .get();
  EXPECT_EQ(huge.status().code(), Code::kInvalidArgument);
  EXPECT_NE(huge.status().message().find("max_payload_bytes"), std::string::npos);
  // The engine goes on.
  ASSERT_OK(run("fine", order(1)));
}

TEST_F(EngineTest, UndecodableOrOversizedReplyIsRejectedAndCounted) {
  send_reply("nobody", "nobody/step/a1", "{not json");
  send_reply("nobody", "nobody/step/a1", "{\"x\":\"" + std::string(2 << 20, 'x') + "\"}");
  engine->poll();
  EXPECT_EQ(engine->metrics().inputs_rejected, 2u);
  ASSERT_OK(run("after", order(1)));
}

TEST_F(EngineTest, CommandsLeaveOnlyAfterTheirCommit) {
  store.fail_next(2);
  auto f = engine->start({.definition = "PlaceOrder", .saga_id = "c", .input = order(1)});
  engine->poll();
  EXPECT_TRUE(transport.sent().empty()) << "nothing may be sent before the commit succeeds";
  EXPECT_EQ(engine->metrics().commit_failures, 1u);
  clock.advance(Duration(200));
  engine->poll();
  EXPECT_TRUE(transport.sent().empty());
  clock.advance(Duration(200));
  engine->poll();
  ASSERT_OK(f.get());
  EXPECT_EQ(transport.sent_ids().front(), "c/reserve_inventory/a1");
}

TEST_F(EngineTest, CommitThatReportsFailureButWroteDoesNotDuplicateAnything) {
  store.ghost_next(1);
  auto f = engine->start({.definition = "PlaceOrder", .saga_id = "g", .input = order(1)});
  engine->poll();
  clock.advance(Duration(200));
  engine->poll();
  auto r = f.get();
  ASSERT_OK(r);
  EXPECT_EQ(r->status, SagaStatus::kCompleted);
  auto events = mem.events("g").value();
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq, i + 1);
  auto ids = transport.sent_ids();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "g/reserve_inventory/a1"), 1);
}

TEST_F(EngineTest, SilentParticipantTimesOutIsRetriedThenCompensatedAsPossiblyApplied) {
  participants.payment.stop();  // nobody answers ChargeCard
  auto f = engine->start({.definition = "PlaceOrder", .saga_id = "t", .input = order(1)});
  engine->poll();
  pass_time(8, Duration(500));  // three attempts of 1s with backoff between them
  EXPECT_EQ(engine->state("t").value().status, SagaStatus::kCompensating);
  EXPECT_GE(engine->metrics().send_failures, 3u);  // no subscriber: sends retried
  // Payment comes back: it gets RefundPayment for a charge it never saw (a no-op).
  ASSERT_OK(participants.payment.start());
  pass_time(10, Duration(500));
  auto r = f.get();
  ASSERT_OK(r);
  EXPECT_EQ(r->status, SagaStatus::kCompensated);
  auto& l = participants.ledger;
  EXPECT_EQ(l.count(l.released, "t"), 1);
  EXPECT_EQ(participants.payment.stats().noop_compensations, 1u);
  EXPECT_EQ(l.count(l.charged, "t"), 0);
}

TEST_F(EngineTest, CompensationThatNeverGetsThroughLeavesSagaStuck) {
  participants.payment.stop();
  auto f = engine->start({.definition = "PlaceOrder", .saga_id = "t2", .input = order(1)});
  engine->poll();
  pass_time(40, Duration(500));
  auto r = f.get();
  ASSERT_OK(r);
  EXPECT_EQ(r->status, SagaStatus::kStuck);
  EXPECT_NE(r->reason.find("charge_payment"), std::string::npos) << r->reason;
}

// While the log cannot be written, a full batch does not turn every new input into another
// commit attempt and another retry timer: one retry per resend_delay.
TEST_F(EngineTest, FailingLogIsRetriedOncePerDelayHoweverManyInputsArrive) {
  open({.max_batch = 1});
  transport.hold(true);
  start_many("f", 30);
  engine->poll();  // 30 starts committed; their first commands held
  store.fail_next(1000);
  transport.hold(false);
  transport.release_all();  // 30 replies, each a decision that cannot be committed
  engine->poll();
  EXPECT_EQ(engine->metrics().commit_failures, 1u);
  clock.advance(Duration(200));
  engine->poll();
  EXPECT_EQ(engine->metrics().commit_failures, 2u);
  store.fail_next(0);
  clock.advance(Duration(200));
  engine->poll();
  EXPECT_EQ(engine->metrics().partitions_failing, 0u);
  EXPECT_EQ(engine->metrics().commit_failures, 2u);
}

TEST_F(EngineTest, CompensationFailingTwiceThenSucceedingUndoesTheStepOnce) {
  participants.release_failures = 2;  // the policy allows 3 attempts
  auto f = engine->start({.definition = "PlaceOrder", .saga_id = "k", .input = order(1, true)});
  engine->poll();
  pass_time(10, Duration(1000));
  auto r = f.get();
  ASSERT_OK(r);
  EXPECT_EQ(r->status, SagaStatus::kCompensated) << r->reason;
  EXPECT_NE(r->reason.find("card declined"), std::string::npos) << r->reason;
  auto& l = participants.ledger;
  EXPECT_EQ(participants.release_failures, 0);
  EXPECT_EQ(l.count(l.released, "k"), 1);
  EXPECT_EQ(l.count(l.reserved, "k"), 1);
}

TEST_F(EngineTest, StuckSagaIsReportedAndCanBeRetriedThroughTheApi) {
  participants.release_down = true;
  auto f = engine->start({.definition = "PlaceOrder", .saga_id = "s", .input = order(1, true)});
  engine->poll();
  pass_time(10, Duration(1000));
  auto r = f.get();
  ASSERT_OK(r);
  EXPECT_EQ(r->status, SagaStatus::kStuck);
  EXPECT_NE(r->reason.find("inventory database unavailable"), std::string::npos);
  EXPECT_EQ(engine->metrics().stuck, 1u);
  auto stuck = mem.list({.status = SagaStatus::kStuck}).value();
  ASSERT_EQ(stuck.size(), 1u);
  EXPECT_EQ(stuck[0].id, "s");

  participants.release_down = false;
  auto retried = engine->retry("s", "database is back");
  engine->poll();
  ASSERT_OK(retried.get());
  EXPECT_EQ(engine->state("s").value().status, SagaStatus::kCompensated);
  // It ends with the failure that started the compensation, not the one it got stuck on.
  EXPECT_NE(engine->state("s").value().reason.find("card declined"), std::string::npos);
  EXPECT_EQ(engine->state("s").value().reason.find("unavailable"), std::string::npos);
  EXPECT_EQ(mem.find("s").value()->reason, engine->state("s").value().reason);
  EXPECT_EQ(engine->metrics().stuck, 0u);
  EXPECT_EQ(participants.ledger.count(participants.ledger.released, "s"), 1);
}

TEST_F(EngineTest, SagaCompletedAfterAnOperatorRetryCarriesNoStuckReason) {
  // A retriable step after the pivot that is rejected: the saga is stuck running.
  EngineOptions opts;
  opts.manual = true;
  opts.definitions = {
      Definition::Builder("Ship")
          .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
          .step("charge_payment", "payment.ChargeCard")
          .step("confirm_order", "orders.ConfirmOrder")
          .retry({RetryPolicy::kForever, Duration(100), 2.0, Duration(1000), 0.2})
          .build()
          .value()};
  engine.reset();
  auto opened = Engine::open(opts, store, transport, clock);
  ASSERT_OK(opened);
  engine = std::move(*opened);
  participants.confirm_refused = true;
  auto f = engine->start({.definition = "Ship", .saga_id = "late", .input = order(2)});
  engine->poll();
  auto r = f.get();
  ASSERT_OK(r);
  ASSERT_EQ(r->status, SagaStatus::kStuck);
  EXPECT_NE(r->reason.find("order system refused it"), std::string::npos) << r->reason;
  participants.confirm_refused = false;
  auto retried = engine->retry("late");
  engine->poll();
  ASSERT_OK(retried.get());
  const SagaState s = engine->state("late").value();
  EXPECT_EQ(s.status, SagaStatus::kCompleted);
  EXPECT_EQ(s.reason, "");
  EXPECT_EQ(mem.find("late").value()->reason, "");
}

TEST_F(EngineTest, StuckSagaCanBeAbortedThroughTheApi) {
  participants.release_down = true;
  std::vector<SagaOutcome> finished;
  EngineOptions opts;
  opts.on_finished = [&](const SagaOutcome& o) { finished.push_back(o); };
  open(opts);
  auto f = engine->start({.definition = "PlaceOrder", .saga_id = "ab", .input = order(1, true)});
  engine->poll();
  pass_time(10, Duration(1000));
  ASSERT_EQ(f.get()->status, SagaStatus::kStuck);
  auto aborted = engine->abort("ab", "released by hand in the warehouse");
  engine->poll();
  ASSERT_OK(aborted.get());
  auto s = engine->state("ab");
  ASSERT_OK(s);
  EXPECT_EQ(s->status, SagaStatus::kAborted);
  EXPECT_NE(s->reason.find("released by hand"), std::string::npos);
  ASSERT_EQ(finished.size(), 2u);  // stuck, then aborted
  EXPECT_EQ(finished[1].status, SagaStatus::kAborted);
  EXPECT_EQ(engine->metrics().aborted, 1u);
  EXPECT_EQ(engine->metrics().stuck, 0u);
  EXPECT_EQ(engine->metrics().active, 0u);
}

TEST_F(EngineTest, DuplicateStartIsAnsweredOnlyAfterTheEndIsCommitted) {
  transport.hold(true);
  auto first = engine->start({.definition = "PlaceOrder", .saga_id = "dup", .input = order(1)});
  engine->poll();
  for (int i = 0; i < 2; ++i) {  // reserve, charge
    transport.release_one();
    engine->poll();
  }
  store.fail_next(1);  // the commit of SagaCompleted fails once
  transport.release_one();
  engine->poll();
  auto second = engine->start({.definition = "PlaceOrder", .saga_id = "dup", .input = order(1)});
  engine->poll();
  EXPECT_NE(second.wait_for(std::chrono::seconds(0)), std::future_status::ready)
      << "answered 'completed' before it was committed";
  clock.advance(Duration(200));
  engine->poll();
  ASSERT_EQ(second.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(second.get()->status, SagaStatus::kCompleted);
  EXPECT_EQ(first.get()->status, SagaStatus::kCompleted);
}

TEST_F(EngineTest, DuplicateStartOfAFinishedSagaReturnsItsContext) {
  ASSERT_OK(run("ctx", order(1)));
  auto again = run("ctx", order(1));
  ASSERT_OK(again);
  EXPECT_NE(again->context.find("r-ctx"), std::string::npos) << again->context;
}

TEST(EngineLifecycle, StateCanBeReadFromACallbackAndAfterClose) {
  MemoryStore store;
  MemoryTransport bus;
  SystemClock clock;
  testutil::OrderParticipants participants(bus);
  ASSERT_OK(participants.start());
  Engine* raw = nullptr;
  std::promise<SagaStatus> seen;
  EngineOptions opts;
  opts.definitions = {testutil::place_order_definition()};
  opts.on_finished = [&](const SagaOutcome& o) {
    auto s = raw->state(o.saga_id);  // on the partition thread: must not wait on itself
    seen.set_value(s.ok() ? s->status : SagaStatus::kRunning);
  };
  auto engine = Engine::open(opts, store, bus, clock);
  ASSERT_OK(engine);
  raw = engine->get();
  auto r = (*engine)->start({.definition = "PlaceOrder", .saga_id = "cb", .input = order(1)});
  auto fut = seen.get_future();
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(fut.get(), SagaStatus::kCompleted);
  ASSERT_OK(r.get());
  ASSERT_OK((*engine)->close());
  EXPECT_EQ((*engine)->state("cb").value().status, SagaStatus::kCompleted);
  auto late = (*engine)->start({.definition = "PlaceOrder", .saga_id = "late"}).get();
  EXPECT_EQ(late.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ((*engine)->retry("cb").get().code(), Code::kFailedPrecondition);
}

TEST_F(EngineTest, AbortOfARunningSagaIsRefused) {
  transport.hold(true);
  engine->start({.definition = "PlaceOrder", .saga_id = "a", .input = order(1)}, [](auto) {});
  engine->poll();
  auto st = engine->abort("a", "no");
  engine->poll();
  EXPECT_EQ(st.get().code(), Code::kFailedPrecondition);
  auto missing = engine->retry("zzz");
  engine->poll();
  EXPECT_EQ(missing.get().code(), Code::kNotFound);
}

TEST_F(EngineTest, LiveStateEqualsReplayOfStoredEvents) {
  transport.hold(true);
  for (int i = 0; i < 10; ++i)
    engine->start({.definition = "PlaceOrder",
                   .saga_id = "r" + std::to_string(i),
                   .input = order(i, i % 3 == 0)},
                  [](auto) {});
  engine->poll();
  transport.hold(false);
  for (int step = 0; transport.release_one(); ++step) {
    engine->poll();
    if (step % 3 == 0) clock.advance(Duration(300));
    for (int i = 0; i < 10; ++i) {
      const std::string id = "r" + std::to_string(i);
      auto live = engine->state(id);
      ASSERT_OK(live);
      ASSERT_EQ(replay(id, mem.events(id).value()), *live) << id;
    }
  }
}

TEST_F(EngineTest, ReplyForAnotherAttemptIsDroppedAndCounted) {
  ASSERT_OK(run("d", order(1)));
  send_reply("d", "d/reserve_inventory/a1", "{}");
  engine->poll();
  EXPECT_EQ(engine->metrics().replies_dropped, 1u);
}

TEST_F(EngineTest, OutboxRowsAreDeletedOnceTheirCommandIsSettled) {
  for (int i = 0; i < 5; ++i) ASSERT_OK(run("o" + std::to_string(i), order(i)));
  engine->close();
  EXPECT_EQ(mem.outbox_size(), 0u);
  EXPECT_EQ(mem.timer_count(), 0u);
}

TEST_F(EngineTest, RunningSagaFinishesOnTheVersionItStartedWith) {
  transport.hold(true);
  engine->start({.definition = "PlaceOrder", .saga_id = "v1", .input = order(1)}, [](auto) {});
  engine->poll();
  engine.reset();  // redeploy with version 2, which adds a step; version 1 stays registered
  transport.release_all();  // delivered while no orchestrator runs: the reply is lost
  transport.hold(false);
  EngineOptions opts;
  opts.manual = true;
  opts.log = [](const std::string&) {};
  Definition v2 =
      Definition::Builder("PlaceOrder", 2)
          .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
          .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
          .step("notify", "orders.Notify", "orders.Retract")
          .step("confirm_order", "orders.ConfirmOrder")
          .build()
          .value();
  opts.definitions = {testutil::place_order_definition(1), v2};
  auto e = Engine::open(opts, store, transport, clock);
  ASSERT_OK(e);
  engine = std::move(e.value());
  engine->poll();
  EXPECT_EQ(engine->state("v1").value().status, SagaStatus::kCompleted);
  EXPECT_EQ(engine->state("v1").value().version, 1);
  participants.orders.on("Notify", [](const CommandContext&) { return ParticipantReply::ok(); });
  auto r = engine->start({.definition = "PlaceOrder", .saga_id = "v2", .input = order(2)});
  engine->poll();
  ASSERT_OK(r.get());
  EXPECT_EQ(engine->state("v2").value().version, 2);
  EXPECT_EQ(mem.events("v2").value().size(), 10u);  // one more step than version 1
}

TEST_F(EngineTest, DecisionsOfManySagasShareOneCommit) {
  transport.hold(true);
  start_many("b", 10);
  engine->poll();
  EXPECT_EQ(store.commits(), 1);
  EXPECT_EQ(engine->metrics().decisions_committed, 10u);
}

TEST_F(EngineTest, GroupCommitIsBoundedByMaxBatch) {
  EngineOptions opts;
  opts.max_batch = 4;
  open(opts);
  transport.hold(true);
  start_many("b", 10);
  engine->poll();
  EXPECT_EQ(store.commits(), 3);  // 4 + 4 + 2
  EXPECT_EQ(engine->metrics().decisions_committed, 10u);
}

TEST_F(EngineTest, CommandThatCannotBeSentIsRecordedInTheTimelineAndTheStuckReason) {
  participants.inventory.stop();  // nobody takes inventory's commands
  auto f = engine->start({.definition = "PlaceOrder", .saga_id = "lonely", .input = order(1)});
  for (int i = 0; i < 400 && f.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
       ++i) {
    engine->poll();
    clock.advance(Duration(100));
  }
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  auto r = f.get();
  ASSERT_OK(r);
  EXPECT_EQ(r->status, SagaStatus::kStuck);
  EXPECT_NE(r->reason.find("no subscriber for channel 'inventory'"), std::string::npos)
      << r->reason;
  const std::vector<Event> events = mem.events("lonely").value();
  int not_sent = 0;
  for (const Event& e : events) {
    if (e.type != EventType::kCommandNotSent) continue;
    ++not_sent;
    EXPECT_NE(e.detail.find("no subscriber for channel 'inventory'"), std::string::npos);
  }
  EXPECT_EQ(not_sent, 6);  // once per attempt (3 actions, 3 compensations), not once per resend
  const std::string timeline =
      format_timeline("lonely", events, engine->definition("PlaceOrder", 0));
  EXPECT_NE(timeline.find("!! could not be sent: no subscriber for channel 'inventory'"),
            std::string::npos)
      << timeline;
  int logged = 0;
  for (const auto& line : logs)
    logged += line.find("lonely/reserve_inventory/a1") != std::string::npos;
  EXPECT_EQ(logged, 1);  // the resend loop does not flood the log
}

TEST_F(EngineTest, StepThatTimesOutIsShownSoInTheTimeline) {
  participants.inventory.stop();
  // Someone takes inventory's commands and never answers.
  ASSERT_OK(transport.subscribe("inventory", [](Message, Ack ack) { ack(); }));
  auto f = engine->start({.definition = "PlaceOrder", .saga_id = "silent", .input = order(1)});
  for (int i = 0; i < 400 && f.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
       ++i) {
    engine->poll();
    clock.advance(Duration(100));
  }
  const std::string timeline =
      format_timeline("silent", mem.events("silent").value(), engine->definition("PlaceOrder", 0));
  EXPECT_NE(timeline.find("!! timed out"), std::string::npos) << timeline;
  EXPECT_NE(timeline.find("reserve_inventory"), std::string::npos) << timeline;
}

TEST(EngineThreads, ManySagasOnSeveralPartitionsWithRealThreads) {
  MemoryStore store;
  MemoryTransport bus;
  SystemClock clock;
  OrderParticipants participants(bus);
  ASSERT_OK(participants.start());
  EngineOptions opts;
  opts.partitions = 2;
  opts.definitions = {testutil::place_order_definition()};
  auto engine = Engine::open(opts, store, bus, clock);
  ASSERT_OK(engine);
  std::vector<std::future<Result<SagaOutcome>>> futures;
  for (int i = 0; i < 500; ++i)
    futures.push_back((*engine)->start({.definition = "PlaceOrder",
                                        .saga_id = "m" + std::to_string(i),
                                        .input = order(i, i % 10 == 0)}));
  int completed = 0, compensated = 0;
  for (auto& f : futures) {
    auto r = f.get();
    ASSERT_OK(r);
    completed += r->status == SagaStatus::kCompleted;
    compensated += r->status == SagaStatus::kCompensated;
  }
  EXPECT_EQ(completed, 450);
  EXPECT_EQ(compensated, 50);
  (*engine)->close();
}

// Real threads: what callers on several threads, callbacks and close() may do to each other.
class EngineRaces : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(participants.start()); }
  void open(std::function<void(const SagaOutcome&)> on_finished = nullptr) {
    EngineOptions opts;
    opts.partitions = 2;
    opts.definitions = {testutil::place_order_definition()};
    opts.on_finished = std::move(on_finished);
    opts.log = [](const std::string&) {};
    auto r = Engine::open(opts, store, bus, clock);
    ASSERT_OK(r);
    engine = std::move(*r);
  }
  StartRequest request(const std::string& id, int n = 1) {
    return {.definition = "PlaceOrder", .saga_id = id, .input = order(n)};
  }
  MemoryStore store;
  MemoryTransport bus;
  SystemClock clock;
  OrderParticipants participants{bus};
  std::unique_ptr<Engine> engine;
};

TEST_F(EngineRaces, StateOfASagaInAnotherPartitionFromACallbackDoesNotDeadlock) {
  std::atomic<int> answered{0};
  Engine* raw = nullptr;
  open([&](const SagaOutcome& o) {
    const int next = (std::stoi(o.saga_id.substr(1)) + 1) % 2000;  // often another partition
    auto s = raw->state("x" + std::to_string(next));
    answered += s.ok() || s.status().code() == Code::kNotFound;
  });
  raw = engine.get();
  std::vector<std::future<Result<SagaOutcome>>> futures;
  for (int i = 0; i < 2000; ++i) futures.push_back(engine->start(request("x" + std::to_string(i))));
  for (auto& f : futures)
    ASSERT_EQ(f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_OK(engine->close());  // on_finished runs after the futures: count once it is done
  EXPECT_EQ(answered.load(), 2000);
}

TEST_F(EngineRaces, StateRacingCloseNeitherHangsNorRaces) {
  open();
  for (int i = 0; i < 300; ++i) engine->start(request("r" + std::to_string(i)), [](auto) {});
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    for (int i = 0; !stop; i = (i + 1) % 300) {
      (void)engine->state("r" + std::to_string(i));
      ++reads;
    }
  });
  while (reads < 50) std::this_thread::yield();
  EXPECT_OK(engine->close());
  stop = true;
  reader.join();
  auto after = engine->state("r1");  // the store, once closed
  ASSERT_OK(after);
  EXPECT_EQ(after->id, "r1");
}

TEST_F(EngineRaces, EveryStartRacingCloseIsAnsweredExactlyOnce) {
  open();
  std::atomic<int> calls{0}, answers{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 2; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 400; ++i) {
        engine->start(request("c" + std::to_string(t) + "-" + std::to_string(i)),
                      [&](Result<SagaOutcome>) { ++answers; });
        ++calls;
      }
    });
  }
  while (calls < 100) std::this_thread::yield();
  EXPECT_OK(engine->close());
  for (auto& c : callers) c.join();
  EXPECT_EQ(answers.load(), calls.load());
}

TEST_F(EngineRaces, FutureOfASagaRunningAtCloseIsAnsweredNotBroken) {
  participants.inventory.stop();  // the saga cannot move on
  open();
  auto f = engine->start(request("waiting"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_OK(engine->close());
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto r = f.get();  // no std::future_error
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find("continues when an engine opens its log again"),
            std::string::npos);
}

TEST_F(EngineRaces, DestroyingWithoutCloseAnswersPendingCallsAndFutures) {
  participants.inventory.stop();
  open();
  auto running = engine->start(request("stays"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::vector<std::future<Result<SagaOutcome>>> queued;
  for (int i = 0; i < 50; ++i) queued.push_back(engine->start(request("q" + std::to_string(i))));
  engine.reset();
  for (auto* f : {&running}) EXPECT_FALSE(f->get().ok());
  for (auto& f : queued) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    (void)f.get();  // an outcome or an error, never a broken promise
  }
}

TEST_F(EngineRaces, ConcurrentStartsOfOneIdCreateExactlyOneSaga) {
  open();
  std::vector<std::future<Result<SagaOutcome>>> futures(64);
  std::vector<std::thread> callers;
  std::atomic<bool> go{false};
  for (int t = 0; t < 64; ++t) {
    callers.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      futures[t] = engine->start(request("once", 7));
    });
  }
  go = true;
  for (auto& c : callers) c.join();
  for (auto& f : futures) {
    auto r = f.get();
    ASSERT_OK(r);
    EXPECT_EQ(r->status, SagaStatus::kCompleted);
  }
  EXPECT_EQ(participants.ledger.count(participants.ledger.reserved, "once"), 1);
  EXPECT_EQ(engine->metrics().started, 1u);
  EXPECT_EQ(store.events("once").value().front().type, EventType::kSagaStarted);
  EXPECT_OK(engine->close());
}

}  // namespace
}  // namespace saga
