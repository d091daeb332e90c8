// Adversarial delivery (label `fault`): every command and reply is held, then delivered in a
// seeded random order, some twice, while the clock jumps ahead at random (so attempts time
// out, late replies arrive after compensation began, compensations meet actions never seen).
// Replies for sagas that do not exist are mixed in. The participants' ledgers must end
// consistent: nothing applied twice, every compensated saga undone, every completed one whole.
#include <gtest/gtest.h>

#include <iostream>

#include <nlohmann/json.hpp>

#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

class AdversarialDelivery : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(participants.start());
    EngineOptions opts;
    opts.manual = true;
    // Compensations retried until they succeed, so that no saga can end stuck here.
    opts.definitions = {
        Definition::Builder("PlaceOrder")
            .default_timeout(Duration(1000))
            .default_retry({3, Duration(100), 2.0, Duration(1000), 0.2})
            .default_compensation_retry(
                {RetryPolicy::kForever, Duration(100), 2.0, Duration(1000), 0.2})
            .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
            .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
            .step("confirm_order", "orders.ConfirmOrder")
            .retry({RetryPolicy::kForever, Duration(100), 2.0, Duration(1000), 0.2})
            .build()
            .value()};
    opts.log = [](const std::string&) {};
    auto e = Engine::open(opts, store, transport, clock);
    ASSERT_OK(e);
    engine = std::move(*e);
  }

  MemoryStore store;
  MemoryTransport bus;
  testutil::FaultyTransport transport{&bus};  // engine and participants both send through it
  FakeClock clock;
  testutil::OrderParticipants participants{transport};
  std::unique_ptr<Engine> engine;
};

TEST_F(AdversarialDelivery, ReorderedDuplicatedAndLateMessagesLeaveEveryLedgerConsistent) {
  testutil::SeededRandom rnd;
  int compensated = 0, declined = 0;
  for (int round = 0; round < 20; ++round) {
    transport.hold(true);
    std::vector<std::pair<std::string, std::future<Result<SagaOutcome>>>> sagas;
    for (int i = 0; i < 30; ++i) {
      const std::string id = "r" + std::to_string(round) + "-" + std::to_string(i);
      const bool decline = i % 5 == 0;
      sagas.emplace_back(
          id,
          engine->start({.definition = "PlaceOrder",
                         .saga_id = id,
                         .input = nlohmann::json{{"order_id", id}, {"decline", decline}}.dump()}));
    }
    auto all_ended = [&] {
      for (auto& [id, f] : sagas)
        if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
      return true;
    };
    for (int step = 0; step < 200000 && !all_ended(); ++step) {
      engine->poll();
      const int r = rnd.uniform(0, 99);
      if (r < 2) {
        clock.advance(Duration(rnd.uniform(100, 1500)));  // attempts time out now and then
      } else if (r < 3) {
        Message stray;  // a reply for a saga that does not exist
        stray.kind = Message::Kind::kReply;
        stray.channel = "orchestrator.replies";
        stray.saga_id = "ghost";
        stray.command_id = "ghost/reserve_inventory/a1";
        transport.send(stray, [](Status) {});
      } else if (!transport.release_random(rnd.engine(), 0.15)) {
        clock.advance(Duration(200));
      }
    }
    ASSERT_TRUE(all_ended()) << "round " << round << " did not finish";
    auto& l = participants.ledger;
    for (auto& [id, f] : sagas) {
      auto r = f.get();
      ASSERT_OK(r);
      const int reserved = l.count(l.reserved, id), released = l.count(l.released, id),
                charged = l.count(l.charged, id), refunded = l.count(l.refunded, id),
                confirmed = l.count(l.confirmed, id);
      for (int n : {reserved, released, charged, refunded, confirmed}) EXPECT_LE(n, 1) << id;
      if (r->status == SagaStatus::kCompleted) {
        EXPECT_EQ(reserved + charged + confirmed, 3) << id;
        EXPECT_EQ(released + refunded, 0) << id;
      } else {
        ASSERT_EQ(r->status, SagaStatus::kCompensated) << id << ": " << r->reason;
        ++compensated;
        declined += r->reason.find("card declined") != std::string::npos;
        EXPECT_EQ(confirmed, 0) << id;
        EXPECT_EQ(released, reserved) << id;
        EXPECT_EQ(refunded, charged) << id;
      }
    }
  }
  const auto m = engine->metrics();
  std::cout << "600 sagas: " << compensated << " compensated (" << declined << " declined, "
            << compensated - declined << " after timeouts); " << m.replies_dropped
            << " replies dropped\n";
  EXPECT_GT(m.replies_dropped, 0u);  // duplicates, late and stray replies
  EXPECT_GT(compensated, declined);  // timeouts made sagas compensate possibly-applied steps
}

}  // namespace
}  // namespace saga
