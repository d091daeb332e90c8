// The engine on a SystemClock whose wall clock jumps an hour ahead and back while one
// participant takes its time and another never answers (label `fault`): no spurious timeout,
// no timer lost, and the saga whose reply never comes is compensated, its charge refunded.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using namespace std::chrono_literals;

// Payment's answers to ChargeCard: for saga "slow" delivered 250 ms late (well inside its
// 1.5 s timeout, also under ThreadSanitizer), for saga "mute"
// never (the charge is made, the reply is lost every time).
class PaymentLine : public TransportWrapper {
 public:
  using TransportWrapper::TransportWrapper;
  ~PaymentLine() override {
    for (auto& t : late_) t.join();
  }
  void send(Message m, Completion done) override {
    if (m.kind == Message::Kind::kReply && m.type == "ChargeCard") {
      if (m.saga_id == "mute") {
        done(Status::Ok());
        return;
      }
      if (m.saga_id == "slow") {
        std::lock_guard l(mu_);
        late_.emplace_back([this, m = std::move(m), done = std::move(done)]() mutable {
          std::this_thread::sleep_for(250ms);
          TransportWrapper::send(std::move(m), std::move(done));
        });
        return;
      }
    }
    TransportWrapper::send(std::move(m), std::move(done));
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> late_;
};

int count(const std::vector<Event>& events, EventType type) {
  int n = 0;
  for (const Event& e : events) n += e.type == type;
  return n;
}

TEST(EngineWallClock, JumpsOfAnHourEitherWayCauseNoSpuriousTimeoutAndLoseNoTimer) {
  std::atomic<int64_t> offset_ms{0};
  SystemClock clock([&] {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now()) +
           Duration(offset_ms.load());
  });
  MemoryStore store;
  MemoryTransport bus;
  PaymentLine line(&bus);
  testutil::OrderParticipants participants(line);
  ASSERT_OK(participants.start());
  EngineOptions opts;
  opts.definitions = {
      Definition::Builder("PlaceOrder")
          .default_timeout(Duration(1500))
          .default_retry({2, Duration(50), 2.0, Duration(200), 0.0})
          .default_compensation_retry(
              {RetryPolicy::kForever, Duration(50), 2.0, Duration(200), 0.0})
          .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
          .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
          .step("confirm_order", "orders.ConfirmOrder")
          .build()
          .value()};
  opts.log = [](const std::string&) {};
  auto engine = Engine::open(opts, store, line, clock);
  ASSERT_OK(engine);

  const auto t0 = std::chrono::steady_clock::now();
  auto slow = (*engine)->start({.definition = "PlaceOrder", .saga_id = "slow"});
  auto mute = (*engine)->start({.definition = "PlaceOrder", .saga_id = "mute"});
  // Both must be waiting for payment (its timer armed) when the clock jumps: under a slow
  // build (ThreadSanitizer) the dispatch can otherwise straddle the jump.
  auto waiting_for_payment = [&](const std::string& id) {
    auto events = store.events(id);
    if (!events.ok()) return false;
    for (const Event& e : *events)
      if (e.type == EventType::kStepDispatched && e.step == 1) return true;
    return false;
  };
  for (int i = 0; i < 500 && !(waiting_for_payment("slow") && waiting_for_payment("mute")); ++i)
    std::this_thread::sleep_for(2ms);
  std::this_thread::sleep_for(50ms);  // past the commit, to the arming of its timer
  offset_ms = 3600 * 1000;            // an hour ahead while both wait for payment
  std::this_thread::sleep_for(150ms);
  offset_ms = -3600 * 1000;  // and an hour back

  ASSERT_EQ(slow.wait_for(10s), std::future_status::ready);
  auto slow_outcome = slow.get();
  ASSERT_OK(slow_outcome);
  EXPECT_EQ(slow_outcome->status, SagaStatus::kCompleted) << slow_outcome->reason;
  auto slow_events = store.events("slow");
  ASSERT_OK(slow_events);
  EXPECT_EQ(count(*slow_events, EventType::kStepTimedOut), 0) << "spurious timeout";

  ASSERT_EQ(mute.wait_for(30s), std::future_status::ready) << "a timer was lost";
  auto mute_outcome = mute.get();
  ASSERT_OK(mute_outcome);
  EXPECT_EQ(mute_outcome->status, SagaStatus::kCompensated);
  auto mute_events = store.events("mute");
  ASSERT_OK(mute_events);
  EXPECT_EQ(count(*mute_events, EventType::kStepTimedOut), 2);  // both attempts waited out
  // Two 1.5 s timeouts and a backoff, on monotonic time, whatever the wall clock said.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 3000ms);

  testutil::Ledger& l = participants.ledger;
  EXPECT_EQ(l.count(l.charged, "mute"), 1);  // applied, its answer lost
  EXPECT_EQ(l.count(l.refunded, "mute"), 1);
  EXPECT_EQ(l.count(l.reserved, "mute"), 1);
  EXPECT_EQ(l.count(l.released, "mute"), 1);
  EXPECT_EQ(l.count(l.confirmed, "mute"), 0);
  EXPECT_EQ(l.count(l.confirmed, "slow"), 1);
  EXPECT_OK((*engine)->close());
}

}  // namespace
}  // namespace saga
