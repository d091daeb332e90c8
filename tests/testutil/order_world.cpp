#include "testutil/order_world.hpp"

#include <nlohmann/json.hpp>

namespace saga::testutil {

Definition place_order_definition(int version) {
  return Definition::Builder("PlaceOrder", version)
      .default_timeout(Duration(1000))
      .default_retry({3, Duration(100), 2.0, Duration(1000), 0.2})
      .default_compensation_retry({3, Duration(100), 2.0, Duration(1000), 0.2})
      .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
      .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
      .step("confirm_order", "orders.ConfirmOrder")
      .retry({RetryPolicy::kForever, Duration(100), 2.0, Duration(1000), 0.2})
      .build()
      .value();
}

OrderParticipants::OrderParticipants(Transport& t)
    : inventory(t, "inventory", inventory_record),
      payment(t, "payment", payment_record),
      orders(t, "orders", orders_record) {
  inventory.on("ReserveItems", [this](const CommandContext& c) {
    std::lock_guard l(ledger.mu);
    ledger.reserved[c.saga_id]++;
    return ParticipantReply::ok(nlohmann::json{{"reservation_id", "r-" + c.saga_id}}.dump());
  });
  inventory.on_compensate("ReleaseReservation", [this](const CommandContext& c) {
    if (release_down) return ParticipantReply::failed("inventory database unavailable");
    if (release_failures > 0) {
      --release_failures;
      return ParticipantReply::failed("inventory database busy");
    }
    auto ctx = nlohmann::json::parse(c.payload);
    std::lock_guard l(ledger.mu);
    ledger.released[c.saga_id]++;
    ledger.released_ids.insert(ctx.value("reservation_id", ""));
    return ParticipantReply::ok();
  });
  payment.on("ChargeCard", [this](const CommandContext& c) {
    if (payment_down) return ParticipantReply::failed("payment gateway unavailable");
    auto ctx = nlohmann::json::parse(c.payload);
    if (ctx.value("decline", false)) return ParticipantReply::rejected("card declined");
    std::lock_guard l(ledger.mu);
    ledger.charged[c.saga_id]++;
    return ParticipantReply::ok(nlohmann::json{{"payment_id", "p-" + c.saga_id}}.dump());
  });
  payment.on_compensate("RefundPayment", [this](const CommandContext& c) {
    std::lock_guard l(ledger.mu);
    ledger.refunded[c.saga_id]++;
    return ParticipantReply::ok();
  });
  orders.on("ConfirmOrder", [this](const CommandContext& c) {
    if (confirm_refused) return ParticipantReply::rejected("order system refused it");
    std::lock_guard l(ledger.mu);
    ledger.confirmed[c.saga_id]++;
    return ParticipantReply::ok();
  });
}

Status OrderParticipants::start() {
  for (Participant* p : {&inventory, &payment, &orders})
    if (Status st = p->start(); !st.ok()) return st;
  return Status::Ok();
}

}  // namespace saga::testutil
