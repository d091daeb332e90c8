// The saga libraries inside a shared object: a saga from the DSL whose second step is declined
// runs its first step's compensation, with the log in SQLite.
#include <string>

#include "saga/dsl.hpp"
#include "saga/engine.hpp"
#include "saga/kafka_transport.hpp"
#include "saga/memory.hpp"
#include "saga/participant.hpp"
#include "saga/sqlite_participant_store.hpp"
#include "saga/sqlite_store.hpp"

extern "C" int saga_plugin_run(const char* dir) {
  using namespace saga;
  // Linked in too: the Kafka adapter's option check.
  if (kafka::check_properties({{"plugin.library.paths", "x"}}).ok()) return 10;
  auto parsed = dsl::parse(R"(saga Reserve version 1 {
  timeout 2s
  step reserve {
    command    inventory.ReserveItems
    compensate inventory.ReleaseReservation
  }
  step charge {
    command    payment.ChargeCard
  }
})");
  if (!parsed.ok()) return 11;
  MemoryTransport bus;
  auto inventory_records = SqliteParticipantStore::open({.path = std::string(dir) + "/inv.db"});
  auto payment_records = SqliteParticipantStore::open({.path = std::string(dir) + "/pay.db"});
  if (!inventory_records.ok() || !payment_records.ok()) return 17;
  int released = 0;
  Participant inventory(bus, "inventory", **inventory_records);
  inventory.on("ReserveItems", [](const CommandContext&) { return ParticipantReply::ok(); });
  inventory.on_compensate("ReleaseReservation", [&](const CommandContext&) {
    ++released;
    return ParticipantReply::ok();
  });
  Participant payment(bus, "payment", **payment_records);
  payment.on("ChargeCard",
             [](const CommandContext&) { return ParticipantReply::rejected("card declined"); });
  if (!inventory.start().ok() || !payment.start().ok()) return 12;
  auto log = SqliteStore::open({.path = std::string(dir) + "/plugin-sagas.db"});
  if (!log.ok()) return 13;
  SystemClock clock;
  EngineOptions opts;
  opts.definitions = parsed.definitions;
  auto engine = Engine::open(opts, **log, bus, clock);
  if (!engine.ok()) return 14;
  auto outcome = (*engine)->start({.definition = "Reserve", .saga_id = "o-1", .input = "{}"}).get();
  if (!outcome.ok() || outcome->status != SagaStatus::kCompensated || released != 1) return 15;
  return (*engine)->close().ok() ? 0 : 16;
}
