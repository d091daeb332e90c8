#include "workload.hpp"

namespace saga::samples {

WorkloadParticipants::WorkloadParticipants(Transport& t)
    : inventory(t, "inventory", inventory_record),
      payment(t, "payment", payment_record),
      orders(t, "orders", orders_record) {
  inventory.on("ReserveItems", [this](const CommandContext& c) {
    std::lock_guard l(mu);
    reserved[c.saga_id]++;
    return ParticipantReply::ok(R"({"reservation_id":"r-)" + c.saga_id + "\"}");
  });
  inventory.on_compensate("ReleaseReservation", [this](const CommandContext& c) {
    std::lock_guard l(mu);
    released[c.saga_id]++;
    return ParticipantReply::ok();
  });
  payment.on("ChargeCard", [this](const CommandContext& c) {
    if (c.payload.find("\"fail\":true") != std::string::npos)
      return ParticipantReply::rejected("card declined");
    std::lock_guard l(mu);
    charged.insert(c.saga_id);
    return ParticipantReply::ok();
  });
  payment.on_compensate("RefundPayment",
                        [](const CommandContext&) { return ParticipantReply::ok(); });
  orders.on("ConfirmOrder", [this](const CommandContext& c) {
    std::lock_guard l(mu);
    confirmed.insert(c.saga_id);
    return ParticipantReply::ok();
  });
}

Status WorkloadParticipants::start() {
  for (Participant* p : {&inventory, &payment, &orders})
    if (Status st = p->start(); !st.ok()) return st;
  return Status::Ok();
}

}  // namespace saga::samples
