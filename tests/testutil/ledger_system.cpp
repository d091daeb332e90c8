#include "testutil/ledger_system.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace saga::testutil {

namespace {

std::unique_ptr<SqliteParticipantStore> open_ledger(const std::string& path, SqliteOptions o) {
  o.path = path;
  auto db = SqliteParticipantStore::open(o);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().to_string().c_str());
    std::exit(3);
  }
  Status st = (*db)->run([](SqliteTx& tx) {
    tx.exec("CREATE TABLE IF NOT EXISTS ledger(saga_id TEXT NOT NULL, kind TEXT NOT NULL)");
  });
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), st.to_string().c_str());
    std::exit(3);
  }
  return std::move(*db);
}

// A handler that appends one ledger row and succeeds.
Participant::Handler append(const char* kind, std::string data = "{}") {
  return [kind, data](const CommandContext& c, ParticipantTx& tx) {
    SqliteTx::of(tx).exec("INSERT INTO ledger VALUES(?1, ?2)", {c.saga_id, kind});
    return ParticipantReply::ok(data);
  };
}

}  // namespace

Definition ledger_order_definition() {
  const RetryPolicy forever{RetryPolicy::kForever, Duration(20), 2.0, Duration(400), 0.2};
  auto def =
      Definition::Builder("PlaceOrder")
          .default_timeout(Duration(1000))
          .default_retry({4, Duration(20), 2.0, Duration(400), 0.2})
          .default_compensation_retry(forever)
          .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
          .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
          .step("confirm_order", "orders.ConfirmOrder")
          .retry(forever)
          .build();
  if (!def.ok()) {
    std::fprintf(stderr, "%s\n", def.status().to_string().c_str());
    std::exit(3);
  }
  return *def;
}

LedgerParticipants::LedgerParticipants(Transport& bus, const OrderSystemFiles& files,
                                       const SqliteOptions& base)
    : inventory_db(open_ledger(files.inventory, base)),
      payment_db(open_ledger(files.payment, base)),
      orders_db(open_ledger(files.orders, base)),
      inventory(bus, "inventory", *inventory_db),
      payment(bus, "payment", *payment_db),
      orders(bus, "orders", *orders_db) {
  inventory.on("ReserveItems", append("reserve", R"({"reservation_id":"r"})"));
  inventory.on_compensate("ReleaseReservation", append("release"));
  payment.on("ChargeCard", [this](const CommandContext& c, ParticipantTx& tx) {
    if (c.payload.find("\"decline\":true") != std::string::npos)
      return ParticipantReply::rejected("card declined");
    if (++charges_ % 17 == 0) return ParticipantReply::failed("gateway busy");  // retried
    SqliteTx::of(tx).exec("INSERT INTO ledger VALUES(?1, 'charge')", {c.saga_id});
    return ParticipantReply::ok(R"({"payment_id":"p"})");
  });
  payment.on_compensate("RefundPayment", append("refund"));
  orders.on("ConfirmOrder", append("confirm"));
}

// Participants first: their unsent replies go out before the engine re-sends its commands.
Status LedgerParticipants::start() {
  for (Participant* p : {&inventory, &payment, &orders}) {
    if (Status st = p->start(); !st.ok()) return st;
  }
  return Status::Ok();
}

std::string order_input(int i) {
  return "{\"order\":" + std::to_string(i) +
         (i % 10 == 0 ? ",\"decline\":true}" : ",\"decline\":false}");
}

bool order_declined(const std::string& saga_id) {
  return std::stoi(saga_id.substr(1)) % 10 == 0;
}

}  // namespace saga::testutil
