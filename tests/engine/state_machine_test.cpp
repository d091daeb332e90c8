// The pure core: every rule of the saga semantics, driven input by input without I/O.
#include "saga/state_machine.hpp"

#include "saga/replay.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using testutil::place_order_definition;

class Sim {
 public:
  explicit Sim(Definition def) : def(std::move(def)) {}

  void start(const std::string& input = R"({"order_id":"o1","amount":10})") {
    take(saga::start(def, "s1", input, "00-trace-01", 42, now));
  }
  Decision reply(const std::string& id, ReplyOutcome outcome = ReplyOutcome::kOk,
                 const std::string& data = "{}", const std::string& error = "") {
    Input in;
    in.kind = Input::Kind::kReply;
    in.reply = Reply{id, outcome, data, error};
    return take(decide(def, state, in, now));
  }
  Decision fire(const std::string& timer_id) {
    for (const Timer& t : timers) {
      if (t.id == timer_id) {
        now = std::max(now, t.due);
        Input in;
        in.kind = Input::Kind::kTimer;
        in.timer = t;
        return take(decide(def, state, in, now));
      }
    }
    ADD_FAILURE() << "no timer " << timer_id;
    return {};
  }
  Decision operator_input(Input::Kind kind, const std::string& why = "ops") {
    Input in;
    in.kind = kind;
    in.reason = why;
    return take(decide(def, state, in, now));
  }
  Decision take(Decision d) {
    log.insert(log.end(), d.events.begin(), d.events.end());
    sent.insert(sent.end(), d.commands.begin(), d.commands.end());
    timers.insert(timers.end(), d.timers.begin(), d.timers.end());
    state = d.state;
    return d;
  }
  // Any input at all: a random reply to any command sent so far (stale ones included), a
  // random timer, an operator action when stuck; time moves on a little.
  void random_input(testutil::SeededRandom& rnd) {
    if (state.status == SagaStatus::kStuck) {
      operator_input(rnd.uniform(0, 1) ? Input::Kind::kOperatorRetry : Input::Kind::kOperatorAbort);
    } else if (rnd.uniform(0, 2) > 0 && !sent.empty()) {
      const std::string id = sent[rnd.uniform(0, static_cast<int>(sent.size()) - 1)].id;
      reply(id, static_cast<ReplyOutcome>(rnd.uniform(0, 2)), R"({"k":1})", "e");
    } else if (!timers.empty()) {
      const std::string id = timers[rnd.uniform(0, static_cast<int>(timers.size()) - 1)].id;
      fire(id);
    }
    now += Duration(rnd.uniform(0, 50));
  }
  std::vector<std::string> sent_ids() const {
    std::vector<std::string> ids;
    for (const auto& c : sent) ids.push_back(c.id);
    return ids;
  }
  std::vector<std::string> events_after(size_t from) const {
    std::vector<std::string> out;
    for (size_t i = from; i < log.size(); ++i) out.push_back(event_name(log[i].type));
    return out;
  }

  Definition def;
  SagaState state;
  std::vector<Event> log;
  std::vector<Command> sent;
  std::vector<Timer> timers;
  TimePoint now = from_ms(1'000'000);
};

const ReplyOutcome kOk = ReplyOutcome::kOk;
const ReplyOutcome kRejected = ReplyOutcome::kRejected;
const ReplyOutcome kFailed = ReplyOutcome::kFailed;

// A definition whose last step is compensatable, to see a three-step unwind.
Definition three_compensatable() {
  return Definition::Builder("Three")
      .default_retry({2, Duration(100), 2.0, Duration(1000), 0.0})
      .default_compensation_retry({3, Duration(100), 2.0, Duration(1000), 0.0})
      .step("a", "p.A", "p.UndoA")
      .step("b", "p.B", "p.UndoB")
      .step("c", "p.C", "p.UndoC")
      .build()
      .value();
}

TEST(StateMachine, StartDispatchesFirstStepWithStableIdAndTimeout) {
  Sim sim(place_order_definition());
  sim.start();
  ASSERT_EQ(sim.sent.size(), 1u);
  EXPECT_EQ(sim.sent[0].id, "s1/reserve_inventory/a1");
  EXPECT_EQ(sim.sent[0].participant, "inventory");
  EXPECT_EQ(sim.sent[0].type, "ReserveItems");
  EXPECT_EQ(sim.sent[0].trace, "00-trace-01");
  ASSERT_EQ(sim.timers.size(), 1u);
  EXPECT_EQ(sim.timers[0].id, "s1/reserve_inventory/a1#t");
  EXPECT_EQ(sim.timers[0].due, sim.now + Duration(1000));
  EXPECT_EQ(sim.events_after(0), (std::vector<std::string>{"SagaStarted", "StepDispatched"}));
  EXPECT_EQ(sim.state.status, SagaStatus::kRunning);
}

TEST(StateMachine, CompletesWhenEveryStepSucceeds) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  sim.reply("s1/charge_payment/a1");
  auto d = sim.reply("s1/confirm_order/a1");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompleted);
  EXPECT_EQ(d.events.back().type, EventType::kSagaCompleted);
  EXPECT_EQ(sim.sent_ids(),
            (std::vector<std::string>{"s1/reserve_inventory/a1", "s1/charge_payment/a1",
                                      "s1/confirm_order/a1"}));
  EXPECT_EQ(d.cancel_timers, std::vector<std::string>{"s1/confirm_order/a1#t"});
}

TEST(StateMachine, CompensatesCompletedStepsInReverseOrder) {
  Sim sim(three_compensatable());
  sim.start();
  sim.reply("s1/a/a1");
  sim.reply("s1/b/a1");
  sim.reply("s1/c/a1", kRejected, "{}", "no");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensating);
  EXPECT_EQ(sim.sent.back().id, "s1/b/c1");
  EXPECT_EQ(sim.sent.back().type, "UndoB");
  sim.reply("s1/b/c1");
  EXPECT_EQ(sim.sent.back().id, "s1/a/c1");
  sim.reply("s1/a/c1");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensated);
  EXPECT_NE(sim.state.reason.find("step 'c' failed: no"), std::string::npos) << sim.state.reason;
}

TEST(StateMachine, CompensatesOnlyCompletedSteps) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  sim.reply("s1/charge_payment/a1", kRejected, "{}", "card declined");
  EXPECT_EQ(sim.sent.back().id, "s1/reserve_inventory/c1");
  EXPECT_EQ(sim.sent.back().type, "ReleaseReservation");
  sim.reply("s1/reserve_inventory/c1");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensated);
  for (const auto& c : sim.sent) EXPECT_NE(c.type, "RefundPayment");
}

TEST(StateMachine, FirstStepFailureEndsCompensatedWithNothingToUndo) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1", kRejected, "{}", "out of stock");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensated);
  EXPECT_EQ(sim.sent.size(), 1u);
}

TEST(StateMachine, RetriesTechnicalFailureWithBackoffThenCompensates) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  auto d = sim.reply("s1/charge_payment/a1", kFailed, "{}", "gateway down");
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_EQ(d.events[0].type, EventType::kStepFailed);
  EXPECT_EQ(d.events[0].value, 0);  // not final
  EXPECT_EQ(d.events[1].type, EventType::kRetryScheduled);
  EXPECT_EQ(d.events[1].attempt, 2);
  const int64_t first_delay = d.events[1].value;
  EXPECT_GE(first_delay, 80);  // 100ms less at most 20% jitter
  EXPECT_LE(first_delay, 100);
  EXPECT_TRUE(d.commands.empty());
  sim.fire("s1/charge_payment/a2#r");
  EXPECT_EQ(sim.sent.back().id, "s1/charge_payment/a2");
  d = sim.reply("s1/charge_payment/a2", kFailed, "{}", "gateway down");
  EXPECT_GE(d.events[1].value, 160);  // doubled
  EXPECT_LE(d.events[1].value, 200);
  sim.fire("s1/charge_payment/a3#r");
  sim.reply("s1/charge_payment/a3", kFailed, "{}", "gateway down");  // 3 of 3: give up
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensating);
  EXPECT_EQ(sim.sent.back().id, "s1/reserve_inventory/c1");
}

TEST(StateMachine, BusinessRejectionIsNotRetried) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  auto d = sim.reply("s1/charge_payment/a1", kRejected, "{}", "card declined");
  for (const Event& e : d.events) EXPECT_NE(e.type, EventType::kRetryScheduled);
  ASSERT_EQ(d.events[0].type, EventType::kStepFailed);
  EXPECT_TRUE(d.events[0].final());
  EXPECT_TRUE(d.events[0].rejected());  // the log tells a rejection from a technical failure
  EXPECT_STREQ(event_outcome(d.events[0]), "rejected");
}

TEST(StateMachine, TechnicalFailureIsRecordedAsFailedNotRejected) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  auto d = sim.reply("s1/charge_payment/a1", kFailed, "{}", "timeout talking to the bank");
  ASSERT_EQ(d.events[0].type, EventType::kStepFailed);
  EXPECT_FALSE(d.events[0].final());
  EXPECT_FALSE(d.events[0].rejected());
  EXPECT_STREQ(event_outcome(d.events[0]), "failed");
}

TEST(StateMachine, TimedOutStepIsTreatedAsAppliedAndCompensated) {
  Sim sim(three_compensatable());
  sim.start();
  sim.reply("s1/a/a1");
  sim.fire("s1/b/a1#t");
  EXPECT_EQ(sim.log.back().type, EventType::kRetryScheduled);
  EXPECT_TRUE(sim.state.steps[1].maybe_applied);
  sim.fire("s1/b/a2#r");
  sim.reply("s1/b/a2", kFailed, "{}", "down");  // 2 of 2: give up
  // b timed out once, so it may have happened: undo b, then a.
  EXPECT_EQ(sim.sent.back().id, "s1/b/c1");
  sim.reply("s1/b/c1");
  EXPECT_EQ(sim.sent.back().id, "s1/a/c1");
  sim.reply("s1/a/c1");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensated);
}

TEST(StateMachine, DropsDuplicateReply) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  const size_t events = sim.log.size();
  auto d = sim.reply("s1/reserve_inventory/a1");
  EXPECT_FALSE(d.ignored.empty());
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(sim.log.size(), events);
  EXPECT_EQ(sim.sent.size(), 2u);  // charge_payment only once
}

TEST(StateMachine, DropsStaleReplyOfEarlierAttempt) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1", kFailed, "{}", "busy");
  sim.fire("s1/reserve_inventory/a2#r");
  auto d = sim.reply("s1/reserve_inventory/a1");  // attempt 1 answers after all
  EXPECT_NE(d.ignored.find("not awaited"), std::string::npos) << d.ignored;
  EXPECT_EQ(sim.state.steps[0].phase, StepPhase::kRunning);
  EXPECT_EQ(sim.state.steps[0].attempt, 2);
  sim.reply("s1/reserve_inventory/a2");
  EXPECT_EQ(sim.state.steps[0].phase, StepPhase::kSucceeded);
}

TEST(StateMachine, DropsLateReplyAfterTimeout) {
  Sim sim(place_order_definition());
  sim.start();
  sim.fire("s1/reserve_inventory/a1#t");
  auto d = sim.reply("s1/reserve_inventory/a1");  // late: the step is in backoff
  EXPECT_FALSE(d.ignored.empty());
  EXPECT_EQ(sim.state.steps[0].phase, StepPhase::kBackoff);
}

TEST(StateMachine, DropsReplyWithForeignOrMalformedId) {
  Sim sim(place_order_definition());
  sim.start();
  EXPECT_FALSE(sim.reply("other/reserve_inventory/a1").ignored.empty());
  EXPECT_FALSE(sim.reply("s1/no_such_step/a1").ignored.empty());
  EXPECT_FALSE(sim.reply("garbage").ignored.empty());
  EXPECT_EQ(sim.log.size(), 2u);
}

TEST(StateMachine, IgnoresObsoleteTimers) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  auto d = sim.fire("s1/reserve_inventory/a1#t");  // its reply already came
  EXPECT_FALSE(d.ignored.empty());
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(d.cancel_timers, std::vector<std::string>{"s1/reserve_inventory/a1#t"});
}

TEST(StateMachine, ReplyDataIsMergedIntoContextAndSentWithLaterCommands) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1", kOk, R"({"reservation_id":"r-9"})");
  sim.reply("s1/charge_payment/a1", kRejected, "{}", "card declined");
  const Command& release = sim.sent.back();
  ASSERT_EQ(release.type, "ReleaseReservation");
  auto ctx = nlohmann::json::parse(release.payload);
  EXPECT_EQ(ctx["reservation_id"], "r-9");
  EXPECT_EQ(ctx["order_id"], "o1");
}

TEST(StateMachine, FailingCompensationIsRetriedThenSagaIsStuckWithReason) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  sim.reply("s1/charge_payment/a1", kRejected, "{}", "declined");
  sim.reply("s1/reserve_inventory/c1", kFailed, "{}", "db down");
  EXPECT_EQ(sim.log.back().type, EventType::kRetryScheduled);
  EXPECT_TRUE(sim.log.back().compensation);
  sim.fire("s1/reserve_inventory/c2#r");
  sim.reply("s1/reserve_inventory/c2", kFailed, "{}", "db down");
  sim.fire("s1/reserve_inventory/c3#r");
  sim.reply("s1/reserve_inventory/c3", kFailed, "{}", "db down");
  EXPECT_EQ(sim.state.status, SagaStatus::kStuck);
  EXPECT_NE(sim.state.reason.find("reserve_inventory"), std::string::npos);
  EXPECT_NE(sim.state.reason.find("3 times"), std::string::npos);
  EXPECT_NE(sim.state.reason.find("db down"), std::string::npos);
}

TEST(StateMachine, OperatorRetryResumesStuckCompensationWithNewAttempt) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  sim.reply("s1/charge_payment/a1", kRejected, "{}", "declined");
  for (int a = 1; a <= 3; ++a) {
    sim.reply("s1/reserve_inventory/c" + std::to_string(a), kFailed, "{}", "db down");
    if (a < 3) sim.fire("s1/reserve_inventory/c" + std::to_string(a + 1) + "#r");
  }
  ASSERT_EQ(sim.state.status, SagaStatus::kStuck);
  sim.operator_input(Input::Kind::kOperatorRetry);
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensating);
  EXPECT_EQ(sim.sent.back().id, "s1/reserve_inventory/c4");
  sim.reply("s1/reserve_inventory/c4");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensated);
}

TEST(StateMachine, OperatorAbortEndsStuckSaga) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  sim.reply("s1/charge_payment/a1", kRejected, "{}", "declined");
  for (int a = 1; a <= 3; ++a) {
    sim.reply("s1/reserve_inventory/c" + std::to_string(a), kFailed, "{}", "db down");
    if (a < 3) sim.fire("s1/reserve_inventory/c" + std::to_string(a + 1) + "#r");
  }
  ASSERT_EQ(sim.state.status, SagaStatus::kStuck);
  sim.operator_input(Input::Kind::kOperatorAbort, "customer refunded by hand");
  EXPECT_EQ(sim.state.status, SagaStatus::kAborted);
  EXPECT_NE(sim.state.reason.find("customer refunded by hand"), std::string::npos);
}

TEST(StateMachine, RejectedPivotCompensatesTheStepsBeforeIt) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  sim.reply("s1/charge_payment/a1");
  sim.reply("s1/confirm_order/a1", kRejected, "{}", "order cancelled");
  EXPECT_EQ(sim.sent.back().id, "s1/charge_payment/c1");
  sim.reply("s1/charge_payment/c1");
  sim.reply("s1/reserve_inventory/c1");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensated);
}

TEST(StateMachine, RejectedRetriableStepAfterPivotMakesSagaStuck) {
  RetryPolicy forever{RetryPolicy::kForever, Duration(100), 2.0, Duration(1000), 0.0};
  auto def = Definition::Builder("R")
                 .step("a", "p.A", "p.UndoA")
                 .step("pivot", "p.Go")
                 .step("notify", "mail.Send")
                 .retry(forever)
                 .build()
                 .value();
  Sim sim(def);
  sim.start();
  sim.reply("s1/a/a1");
  sim.reply("s1/pivot/a1");
  sim.reply("s1/notify/a1", kRejected, "{}", "bad address");
  EXPECT_EQ(sim.state.status, SagaStatus::kStuck);
  EXPECT_NE(sim.state.reason.find("bad address"), std::string::npos);
  for (const auto& c : sim.sent) EXPECT_FALSE(c.compensation);
}

TEST(StateMachine, OperatorInputOnSagaThatIsNotStuckIsIgnored) {
  Sim sim(place_order_definition());
  sim.start();
  auto d = sim.operator_input(Input::Kind::kOperatorAbort);
  EXPECT_TRUE(d.events.empty());
  EXPECT_NE(d.ignored.find("not stuck"), std::string::npos);
}

TEST(StateMachine, RetriableStepIsRetriedUntilItSucceeds) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  sim.reply("s1/charge_payment/a1");
  for (int a = 1; a <= 20; ++a) {
    const std::string id = "s1/confirm_order/a" + std::to_string(a);
    if (a % 2) {
      sim.reply(id, kFailed, "{}", "busy");
    } else {
      sim.fire(id + "#t");
    }
    sim.fire("s1/confirm_order/a" + std::to_string(a + 1) + "#r");
  }
  EXPECT_EQ(sim.state.status, SagaStatus::kRunning);
  sim.reply("s1/confirm_order/a21");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompleted);
  for (const auto& c : sim.sent) EXPECT_FALSE(c.compensation);
}

TEST(StateMachine, PivotWhoseLastAttemptTimedOutMakesSagaStuck) {
  auto def = Definition::Builder("P")
                 .default_retry({1, Duration(100), 2.0, Duration(100), 0.0})
                 .step("a", "p.A", "p.UndoA")
                 .step("pivot", "p.Go")
                 .build()
                 .value();
  Sim sim(def);
  sim.start();
  sim.reply("s1/a/a1");
  sim.fire("s1/pivot/a1#t");
  EXPECT_EQ(sim.state.status, SagaStatus::kStuck);
  EXPECT_NE(sim.state.reason.find("unknown"), std::string::npos);
  for (const auto& c : sim.sent) EXPECT_FALSE(c.compensation);
  sim.operator_input(Input::Kind::kOperatorRetry);
  EXPECT_EQ(sim.sent.back().id, "s1/pivot/a2");
  sim.reply("s1/pivot/a2");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompleted);
}

TEST(StateMachine, ParallelStepsAreDispatchedTogether) {
  auto b = Definition::Builder("Par");
  auto def = b.step("first", "p.A", "p.UndoA")
                 .parallel({b.make_step("x", "x.Do", "x.Undo"), b.make_step("y", "y.Do", "y.Undo")})
                 .step("last", "p.Z")
                 .build()
                 .value();
  Sim sim(def);
  sim.start();
  sim.reply("s1/first/a1");
  EXPECT_EQ(sim.sent_ids(), (std::vector<std::string>{"s1/first/a1", "s1/x/a1", "s1/y/a1"}));
  sim.reply("s1/y/a1");
  EXPECT_EQ(sim.sent.size(), 3u);  // waits for x
  sim.reply("s1/x/a1");
  EXPECT_EQ(sim.sent.back().id, "s1/last/a1");
}

TEST(StateMachine, ParallelFailureWaitsForSiblingsThenCompensatesInReverseOrder) {
  auto b = Definition::Builder("Par");
  b.default_retry({1, Duration(100), 2.0, Duration(100), 0.0});
  auto def = b.step("first", "p.A", "p.UndoA")
                 .parallel({b.make_step("x", "x.Do", "x.Undo"), b.make_step("y", "y.Do", "y.Undo"),
                            b.make_step("z", "z.Do", "z.Undo")})
                 .build()
                 .value();
  Sim sim(def);
  sim.start();
  sim.reply("s1/first/a1");
  sim.reply("s1/x/a1");
  sim.reply("s1/y/a1", kRejected, "{}", "no");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensating);
  EXPECT_EQ(sim.sent.size(), 4u) << "z still in flight: no compensation yet";
  sim.reply("s1/z/a1");  // z succeeded after all: it must be undone too
  EXPECT_EQ(sim.sent.back().id, "s1/z/c1");
  sim.reply("s1/z/c1");
  EXPECT_EQ(sim.sent.back().id, "s1/x/c1");
  sim.reply("s1/x/c1");
  EXPECT_EQ(sim.sent.back().id, "s1/first/c1");
  sim.reply("s1/first/c1");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensated);
}

TEST(StateMachine, SiblingSettlingLaterDoesNotReplaceTheFailureReason) {
  auto b = Definition::Builder("Par");
  b.default_retry({1, Duration(100), 2.0, Duration(100), 0.0});
  auto def = b.parallel({b.make_step("x", "x.Do", "x.Undo"), b.make_step("y", "y.Do", "y.Undo")})
                 .build()
                 .value();
  Sim sim(def);
  sim.start();
  sim.reply("s1/x/a1", kRejected, "{}", "out of stock");
  sim.fire("s1/y/a1#t");  // the sibling times out afterwards
  sim.reply("s1/y/c1");
  EXPECT_EQ(sim.state.status, SagaStatus::kCompensated);
  EXPECT_NE(sim.state.reason.find("out of stock"), std::string::npos) << sim.state.reason;
}

TEST(StateMachine, ReplayOfTheLogGivesTheDecidedState) {
  testutil::SeededRandom rnd;
  for (int run = 0; run < 200; ++run) {
    Sim sim(three_compensatable());
    sim.start();
    for (int i = 0; i < 30 && !is_terminal(sim.state.status); ++i) {
      sim.random_input(rnd);
      ASSERT_EQ(replay("s1", sim.log), sim.state) << "after input " << i;
    }
    for (size_t i = 0; i < sim.log.size(); ++i) ASSERT_EQ(sim.log[i].seq, i + 1);
  }
}

TEST(Replay, DeterminismCheckAcceptsEveryRecordedLog) {
  testutil::SeededRandom rnd;
  for (int run = 0; run < 200; ++run) {
    Sim sim(three_compensatable());
    sim.start();
    for (int i = 0; i < 30 && !is_terminal(sim.state.status); ++i) {
      sim.random_input(rnd);
    }
    auto report = check_determinism(sim.def, "s1", sim.log);
    ASSERT_OK(report);
    EXPECT_EQ(report->events_checked, sim.log.size());
    EXPECT_EQ(report->final_state, sim.state);
  }
}

TEST(Replay, DeterminismCheckNamesTheFirstEventThatDiffers) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  sim.reply("s1/charge_payment/a1", kFailed, "{}", "down");
  sim.fire("s1/charge_payment/a2#r");
  std::vector<Event> log = sim.log;
  for (Event& e : log)
    if (e.type == EventType::kRetryScheduled) e.value += 7;  // as if another jitter rule wrote it
  auto r = check_determinism(sim.def, "s1", log);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("diverges at event #6 RetryScheduled"), std::string::npos)
      << r.status().message();
}

TEST(Replay, DeterminismCheckSaysSoWhenTheDefinitionChangedUnderItsVersion) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  Definition edited = place_order_definition();
  edited.steps[1].timeout = Duration(12345);
  auto r = check_determinism(edited, "s1", sim.log);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("changed under the same version"), std::string::npos)
      << r.status().message();
  std::vector<Event> older = sim.log;  // a log written before fingerprints were recorded
  older[0].fingerprint.clear();
  EXPECT_OK(check_determinism(sim.def, "s1", older));
}

TEST(Replay, LogWrittenBeforeRejectionsWereMarkedReplaysAndPassesTheCheck) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  sim.reply("s1/charge_payment/a1", kRejected, "{}", "card declined");
  sim.reply("s1/reserve_inventory/c1");
  ASSERT_EQ(sim.state.status, SagaStatus::kCompensated);
  std::vector<Event> older = sim.log;  // as an older build wrote it: 1 for a final rejection
  int marked = 0;
  for (Event& e : older) {
    if (!e.rejected()) continue;
    e.value &= ~Event::kRejected;
    ++marked;
  }
  ASSERT_EQ(marked, 1);
  EXPECT_OK(check_determinism(sim.def, "s1", older));
  EXPECT_EQ(replay("s1", older).status, SagaStatus::kCompensated);
  // A technical failure is not taken for a rejection in either direction.
  std::vector<Event> edited = sim.log;
  for (Event& e : edited)
    if (e.rejected()) e.value = Event::kRejected;  // rejected but not final: not what ran
  EXPECT_FALSE(check_determinism(sim.def, "s1", edited).ok());
}

TEST(Replay, StateAtAnyEventIsThePrefixFold) {
  Sim sim(place_order_definition());
  sim.start();
  sim.reply("s1/reserve_inventory/a1");
  EXPECT_EQ(state_at("s1", sim.log, 2).steps[0].phase, StepPhase::kRunning);
  EXPECT_EQ(state_at("s1", sim.log, 3).steps[0].phase, StepPhase::kSucceeded);
  EXPECT_EQ(state_at("s1", sim.log, 100), sim.state);
}

TEST(StateMachine, BackoffIsDeterministicGrowsAndIsCapped) {
  RetryPolicy p{10, Duration(100), 2.0, Duration(1000), 0.5};
  for (int attempt = 2; attempt <= 10; ++attempt) {
    Duration d = backoff_delay(p, attempt, 7, 1, false);
    EXPECT_EQ(d, backoff_delay(p, attempt, 7, 1, false));
    const double base = std::min(100.0 * std::pow(2.0, attempt - 2), 1000.0);
    EXPECT_LE(d.count(), base);
    EXPECT_GE(d.count(), base * 0.5 - 1);
  }
  EXPECT_NE(backoff_delay(p, 5, 7, 1, false), backoff_delay(p, 5, 8, 1, false));
}

TEST(CommandId, RoundTripsThroughParse) {
  CommandIdParts parts;
  ASSERT_TRUE(parse_command_id(command_id("order/7", "charge_payment", true, 12), &parts));
  EXPECT_EQ(parts.saga_id, "order/7");
  EXPECT_EQ(parts.step, "charge_payment");
  EXPECT_TRUE(parts.compensation);
  EXPECT_EQ(parts.attempt, 12);
  for (const char* bad :
       {"", "/", "a/b", "s/step/x1", "s/step/a", "s/step/a0", "s//a1", "s/step/a1x", "/step/a1"})
    EXPECT_FALSE(parse_command_id(bad, &parts)) << bad;
}

}  // namespace
}  // namespace saga
