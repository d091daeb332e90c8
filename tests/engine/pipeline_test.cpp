// The commit pipeline, with real threads: a partition hands each batch to its committer and
// goes on deciding; nothing is acted on before its commit; a failed commit goes back in front.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
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

// Holds every commit while shut; can fail the next ones. Records the saga ids of each commit
// that went through, in order.
class GatedStore : public EventStoreWrapper {
 public:
  using EventStoreWrapper::EventStoreWrapper;
  Status commit(const WriteBatch& batch) override {
    std::unique_lock l(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(l, [this] { return open_; });
    if (fail_ > 0) {
      --fail_;
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
  std::vector<std::vector<std::string>> committed_;
};

class Pipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(participants.start());
    EngineOptions opts;
    opts.definitions = {testutil::place_order_definition()};
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
  StartRequest ra = request("a");
  ra.on_accepted = [&](Status st) { accepted = st.ok() ? 1 : 0; };
  auto a = engine->start(std::move(ra));
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
  auto found = mem.find("a");
  ASSERT_OK(found);
  EXPECT_TRUE(found->has_value());
  ASSERT_TRUE(ready(a));  // answered (it continues in the next engine), not broken
  EXPECT_FALSE(a.get().ok());
}

TEST_F(Pipeline, DestroyedWhileACommitRunsEveryCallerIsAnswered) {
  store.shut();
  std::atomic<int> accepted{-1};
  StartRequest ra = request("a");
  ra.on_accepted = [&](Status st) { accepted = st.ok() ? 1 : 0; };
  auto a = engine->start(std::move(ra));
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
  EXPECT_TRUE(transport.sent().empty());  // a destroyed engine acts on nothing
}

}  // namespace
}  // namespace saga
