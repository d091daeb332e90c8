// The commit pipeline, with real threads: a partition hands each batch to its committer and
// goes on deciding; nothing is acted on before its commit; a failed commit goes back in front.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using testutil::FaultyTransport;
using testutil::OrderParticipants;
using namespace std::chrono_literals;

// Holds every commit (or those `hold_if` picks) while shut; can fail the next ones, or those
// `fail_if` picks. Records the saga ids of each commit that went through, in order.
class GatedStore : public EventStoreWrapper {
 public:
  using EventStoreWrapper::EventStoreWrapper;
  using Pick = std::function<bool(const WriteBatch&)>;
  Status commit(const WriteBatch& batch) override {
    std::unique_lock l(mu_);
    if (!hold_if_ || hold_if_(batch)) {
      ++entered_;
      cv_.notify_all();
      cv_.wait(l, [this] { return open_; });
    }
    if (fail_ > 0 || (fail_if_ && fail_if_(batch))) {
      if (fail_ > 0) --fail_;
      return Status::Unavailable("the test failed this commit");
    }
    Status st = EventStoreWrapper::commit(batch);
    std::vector<std::string> ids;
    for (const SagaWrite& w : batch.sagas) ids.push_back(w.state.id);
    if (st.ok()) committed_.push_back(ids);
    return st;
  }
  void shut() { set_open(false); }
  void open() { set_open(true); }
  void fail_next(int n) {
    std::lock_guard l(mu_);
    fail_ = n;
  }
  void hold_if(Pick pick) {
    std::lock_guard l(mu_);
    hold_if_ = std::move(pick);
  }
  void fail_if(Pick pick) {
    std::lock_guard l(mu_);
    fail_if_ = std::move(pick);
  }
  // Waits until `n` commits have begun.
  bool wait_entered(int n) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, 10s, [&] { return entered_ >= n; });
  }
  std::vector<std::vector<std::string>> committed() const {
    std::lock_guard l(mu_);
    return committed_;
  }

 private:
  void set_open(bool open) {
    {
      std::lock_guard l(mu_);
      open_ = open;
    }
    cv_.notify_all();
  }
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int entered_ = 0, fail_ = 0;
  Pick hold_if_, fail_if_;
  std::vector<std::vector<std::string>> committed_;
};

class Pipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(participants.start());
    open({});
  }
  void TearDown() override { store.open(); }  // a failed assertion leaves no commit held
  void open(EngineOptions opts) {
    engine.reset();
    if (opts.definitions.empty()) opts.definitions = {testutil::place_order_definition()};
    opts.resend_delay = Duration(50);
    opts.log = [](const std::string&) {};
    auto r = Engine::open(opts, store, transport, clock);
    ASSERT_OK(r);
    engine = std::move(*r);
  }
  StartRequest request(const std::string& id) {
    return {.definition = "PlaceOrder",
            .saga_id = id,
            .input = nlohmann::json{{"order_id", id}, {"amount", 10}}.dump()};
  }
  // Starts saga `id`; `accepted` becomes 1 once its start is accepted, 0 if refused.
  std::future<Result<SagaOutcome>> start_noting_acceptance(const std::string& id,
                                                           std::atomic<int>& accepted) {
    StartRequest r = request(id);
    r.on_accepted = [&accepted](Status st) { accepted = st.ok() ? 1 : 0; };
    return engine->start(std::move(r));
  }
  // Declined at payment: compensated, or stuck while the release fails too.
  StartRequest declined_request(const std::string& id) {
    StartRequest r = request(id);
    r.input = nlohmann::json{{"order_id", id}, {"amount", 10}, {"decline", true}}.dump();
    return r;
  }
  static bool writes_stuck(const WriteBatch& b) {
    for (const SagaWrite& w : b.sagas)
      if (w.state.status == SagaStatus::kStuck) return true;
    return false;
  }
  static bool ready(std::future<Result<SagaOutcome>>& f) {
    return f.wait_for(10s) == std::future_status::ready;
  }

  MemoryStore mem;
  GatedStore store{&mem};
  MemoryTransport bus;
  FaultyTransport transport{&bus};
  SystemClock clock;
  OrderParticipants participants{bus};
  std::unique_ptr<Engine> engine;
};

TEST_F(Pipeline, DecisionsMadeWhileACommitRunsAreCommittedNextAndActedOnOnlyThen) {
  store.shut();
  auto a = engine->start(request("a"));
  ASSERT_TRUE(store.wait_entered(1));
  std::atomic<bool> b_accepted{false};
  StartRequest rb = request("b");
  rb.on_accepted = [&](Status st) { b_accepted = st.ok(); };
  auto b = engine->start(std::move(rb));
  // The partition is not blocked by the commit: it decided b's start and answers a read.
  auto live = engine->state("b");
  ASSERT_OK(live);
  EXPECT_EQ(live->status, SagaStatus::kRunning);
  EXPECT_TRUE(transport.sent().empty());  // nothing leaves before its commit
  EXPECT_FALSE(b_accepted.load());

  store.open();
  ASSERT_TRUE(ready(a));
  ASSERT_TRUE(ready(b));
  EXPECT_EQ(a.get()->status, SagaStatus::kCompleted);
  EXPECT_EQ(b.get()->status, SagaStatus::kCompleted);
  EXPECT_TRUE(b_accepted.load());
  const auto commits = store.committed();
  ASSERT_GE(commits.size(), 2u);
  EXPECT_EQ(commits[0], std::vector<std::string>{"a"});
  EXPECT_EQ(commits[1], std::vector<std::string>{"b"});
  EXPECT_EQ(participants.ledger.count(participants.ledger.reserved, "a"), 1);
  EXPECT_EQ(participants.ledger.count(participants.ledger.reserved, "b"), 1);
  EXPECT_OK(engine->close());
}

TEST_F(Pipeline, AFailedCommitGoesBackInFrontOfWhatWasGatheredMeanwhile) {
  store.shut();
  store.fail_next(1);
  auto a = engine->start(request("a"));
  ASSERT_TRUE(store.wait_entered(1));
  auto b = engine->start(request("b"));
  ASSERT_OK(engine->state("b"));  // b's start is gathered behind a's commit
  store.open();                   // a's commit fails; both are committed by the retry
  ASSERT_TRUE(ready(a));
  ASSERT_TRUE(ready(b));
  EXPECT_EQ(a.get()->status, SagaStatus::kCompleted);
  EXPECT_EQ(b.get()->status, SagaStatus::kCompleted);
  const auto commits = store.committed();
  ASSERT_FALSE(commits.empty());
  EXPECT_EQ(commits[0], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(engine->metrics().commit_failures, 1u);
  EXPECT_EQ(participants.ledger.count(participants.ledger.reserved, "a"), 1);
  EXPECT_EQ(participants.ledger.count(participants.ledger.confirmed, "b"), 1);
  for (const std::string id : {"a", "b"}) {
    auto events = mem.events(id);
    ASSERT_OK(events);
    for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].seq, i + 1) << id;
  }
  EXPECT_OK(engine->close());
}

TEST_F(Pipeline, CloseWaitsForTheCommitInFlightAndActsOnIt) {
  store.shut();
  std::atomic<int> accepted{-1};
  auto a = start_noting_acceptance("a", accepted);
  ASSERT_TRUE(store.wait_entered(1));
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    EXPECT_OK(engine->close());
    closed = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(closed.load());
  store.open();
  closer.join();
  EXPECT_EQ(accepted.load(), 1);
  const auto sent = transport.sent_ids();  // acted on: its first command left
  EXPECT_NE(std::find(sent.begin(), sent.end(), "a/reserve_inventory/a1"), sent.end());
  auto found = mem.find("a");
  ASSERT_OK(found);
  EXPECT_TRUE(found->has_value());
  ASSERT_TRUE(ready(a));  // answered (it continues in the next engine), not broken
  EXPECT_FALSE(a.get().ok());
}

TEST_F(Pipeline, DestroyedWhileACommitRunsEveryCallerIsAnswered) {
  store.shut();
  std::atomic<int> accepted{-1};
  auto a = start_noting_acceptance("a", accepted);
  ASSERT_TRUE(store.wait_entered(1));
  auto b = engine->start(request("b"));
  ASSERT_OK(engine->state("b"));
  std::thread opener([&] {
    std::this_thread::sleep_for(100ms);
    store.open();
  });
  engine.reset();  // waits for the commit in flight
  opener.join();
  EXPECT_EQ(accepted.load(), 1);  // a's start was committed
  ASSERT_TRUE(ready(a));
  ASSERT_TRUE(ready(b));
  EXPECT_FALSE(a.get().ok());
  EXPECT_FALSE(b.get().ok());
}

// A saga stuck in the commit that runs, aborted by an operator in the batch behind it: callers
// hear what is committed (stuck), not the abort that may never be.
TEST_F(Pipeline, OutcomeToldIsTheCommittedOneNotADecisionStillBeingCommitted) {
  auto def = Definition::Builder("Lonely")
                 .default_timeout(Duration(30))
                 .default_retry({1, Duration(10), 2.0, Duration(10), 0})
                 .default_compensation_retry({1, Duration(10), 2.0, Duration(10), 0})
                 .step("a", "nobody.Do", "nobody.Undo")  // no subscriber: times out, then stuck
                 .build();
  ASSERT_OK(def);
  EngineOptions opts;
  opts.definitions = {*def};
  open(opts);
  auto has = [](SagaStatus status) {
    return [status](const WriteBatch& b) {
      for (const SagaWrite& w : b.sagas)
        if (w.state.status == status) return true;
      return false;
    };
  };
  store.hold_if(has(SagaStatus::kStuck));
  store.fail_if(has(SagaStatus::kAborted));
  store.shut();
  auto f = engine->start({.definition = "Lonely", .saga_id = "x", .input = "{}"});
  ASSERT_TRUE(store.wait_entered(1));
  auto aborted = engine->abort("x", "operator");  // decided while the stuck commit runs
  ASSERT_EQ(engine->state("x")->status, SagaStatus::kAborted);
  store.open();
  ASSERT_TRUE(ready(f));
  auto r = f.get();
  ASSERT_OK(r);
  EXPECT_EQ(r->status, SagaStatus::kStuck);
  EXPECT_EQ((*mem.find("x"))->status, SagaStatus::kStuck);
  EXPECT_EQ(engine->metrics().aborted, 0u);
  EXPECT_EQ(engine->metrics().stuck, 1u);
  EXPECT_EQ(aborted.wait_for(100ms), std::future_status::timeout);  // its commit keeps failing
  store.fail_if(nullptr);  // the log mends: the abort is committed, and told
  ASSERT_EQ(aborted.wait_for(10s), std::future_status::ready);
  EXPECT_OK(aborted.get());
  EXPECT_EQ((*mem.find("x"))->status, SagaStatus::kAborted);
  EXPECT_EQ(engine->metrics().aborted, 1u);
  EXPECT_EQ(engine->metrics().stuck, 0u);
  EXPECT_OK(engine->close());
}

TEST_F(Pipeline, CallersOfASagaRetriedWhileItsStuckStateWasCommittedHearHowItEnds) {
  participants.release_down = true;  // declined, then its release fails: the saga gets stuck
  store.hold_if(writes_stuck);
  store.shut();
  const StartRequest declined = declined_request("x");
  auto first = engine->start(declined);
  ASSERT_TRUE(store.wait_entered(1));  // the stuck state is being committed
  participants.release_down = false;
  auto retried = engine->retry("x", "the inventory is back");  // decided behind it
  auto again = engine->start(declined);                        // waits on the running saga
  ASSERT_OK(engine->state("x"));
  store.open();
  ASSERT_TRUE(ready(again));
  ASSERT_TRUE(ready(first));
  EXPECT_EQ(again.get()->status, SagaStatus::kCompensated);  // not the stuck state it replaced
  EXPECT_EQ(first.get()->status, SagaStatus::kCompensated);
  EXPECT_OK(retried.get());
  EXPECT_EQ(engine->metrics().stuck, 0u);
  EXPECT_EQ(engine->metrics().compensated, 1u);
  EXPECT_OK(engine->close());
}

TEST_F(Pipeline, ASagaRetriedWhileItsStuckStateWasCommittedAndStuckAgainIsToldSo) {
  participants.release_down = true;  // its release keeps failing, the retry's too
  store.hold_if(writes_stuck);
  store.shut();
  const StartRequest declined = declined_request("x");
  auto first = engine->start(declined);
  ASSERT_TRUE(store.wait_entered(1));                          // the stuck state is being committed
  auto retried = engine->retry("x", "try the release again");  // decided behind it
  auto again = engine->start(declined);
  store.hold_if([](const WriteBatch&) { return false; });
  store.open();
  ASSERT_TRUE(ready(first));
  ASSERT_TRUE(ready(again));
  EXPECT_OK(retried.get());
  EXPECT_EQ(first.get()->status, SagaStatus::kStuck);  // stuck again, after the retry
  EXPECT_EQ(again.get()->status, SagaStatus::kStuck);
  EXPECT_EQ((*mem.find("x"))->status, SagaStatus::kStuck);
  EXPECT_EQ(engine->metrics().stuck, 1u);
  EXPECT_OK(engine->close());
}

// The counters follow the log: a retry that never gets committed leaves the saga stuck there.
TEST_F(Pipeline, AStuckSagaWhoseRetryIsNotCommittedIsStillCountedStuck) {
  participants.release_down = true;  // declined, then its release fails: the saga gets stuck
  const StartRequest declined = declined_request("x");
  auto first = engine->start(declined);
  ASSERT_TRUE(ready(first));
  ASSERT_EQ(first.get()->status, SagaStatus::kStuck);
  ASSERT_EQ(engine->metrics().stuck, 1u);

  participants.release_down = false;
  store.fail_next(1'000'000);  // the log cannot be written from here on
  auto retried = engine->retry("x", "the inventory is back");
  EXPECT_EQ(retried.wait_for(200ms), std::future_status::timeout);
  EXPECT_EQ(engine->state("x")->status, SagaStatus::kCompensating);  // decided, not committed
  EXPECT_EQ(engine->metrics().stuck, 1u);
  EXPECT_FALSE(engine->close().ok());
  EXPECT_EQ((*mem.find("x"))->status, SagaStatus::kStuck);
  EXPECT_EQ(engine->metrics().stuck, 1u);
  ASSERT_EQ(retried.wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(retried.get().ok());
}

TEST_F(Pipeline, ACommitStaysWithinMaxBatchWhileTheOneBeforeItRuns) {
  EngineOptions opts;
  opts.max_batch = 4;
  open(opts);
  store.shut();
  std::vector<std::future<Result<SagaOutcome>>> futures;
  futures.push_back(engine->start(request("first")));
  ASSERT_TRUE(store.wait_entered(1));
  std::thread opener([&] {
    std::this_thread::sleep_for(100ms);
    store.open();
  });
  for (int i = 0; i < 40; ++i) futures.push_back(engine->start(request("s" + std::to_string(i))));
  opener.join();
  for (auto& f : futures) {
    ASSERT_TRUE(ready(f));
    EXPECT_EQ(f.get()->status, SagaStatus::kCompleted);
  }
  for (const auto& ids : store.committed()) EXPECT_LE(ids.size(), 4u);
  EXPECT_OK(engine->close());
}

TEST_F(Pipeline, CloseAcceptsAStartRepeatedWhileTheFirstWasBeingCommitted) {
  store.shut();
  auto a = engine->start(request("a"));
  ASSERT_TRUE(store.wait_entered(1));
  std::atomic<int> accepted{-1};
  StartRequest again = request("a");  // the same saga again: nothing of its own to commit
  again.on_accepted = [&](Status st) { accepted = st.ok() ? 1 : 0; };
  engine->start(std::move(again), [](Result<SagaOutcome>) {});
  ASSERT_OK(engine->state("a"));  // the repeat has been handled
  std::thread closer([&] { EXPECT_OK(engine->close()); });
  std::this_thread::sleep_for(50ms);
  store.open();
  closer.join();
  EXPECT_EQ(accepted.load(), 1);  // its start is committed: accepted, not "engine closed"
}

}  // namespace
}  // namespace saga
