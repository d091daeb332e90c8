// A complete embedding: an engine and one participant, each with its own SQLite file.
// Built as `embedding-example`; the README shows this file as it is (a test compares them).
#include <cstdio>

#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "saga/participant.hpp"
#include "saga/sqlite_participant_store.hpp"
#include "saga/sqlite_store.hpp"

int main() {
  using namespace saga;
  // Built in code here; saga::dsl::load_file("place_order.saga") reads .saga files.
  auto def = Definition::Builder("ReserveStock")
                 .default_timeout(Duration(2000))
                 .step("reserve", "inventory.ReserveItems", "inventory.ReleaseReservation")
                 .build();
  MemoryTransport bus;  // in-process; the Kafka transport takes its place across processes

  // The participant: its record of each command commits with its own rows, in its own file.
  auto inventory_db = SqliteParticipantStore::open({.path = "inventory.db"});
  if (!def.ok() || !inventory_db.ok()) return 1;
  Status schema = (*inventory_db)->run([](SqliteTx& tx) {
    tx.exec("CREATE TABLE IF NOT EXISTS reservations(saga_id TEXT PRIMARY KEY, qty INTEGER)");
  });
  Participant inventory(bus, "inventory", **inventory_db);
  inventory.on("ReserveItems", [](const CommandContext& c, ParticipantTx& tx) {
    SqliteTx::of(tx).exec("INSERT INTO reservations VALUES(?1, 1)", {c.saga_id});
    return ParticipantReply::ok(R"({"reservation_id":"r-1"})");
  });
  inventory.on_compensate("ReleaseReservation", [](const CommandContext& c, ParticipantTx& tx) {
    SqliteTx::of(tx).exec("DELETE FROM reservations WHERE saga_id = ?1", {c.saga_id});
    return ParticipantReply::ok();
  });
  if (!schema.ok() || !inventory.start().ok()) return 1;

  // The orchestrator, its event log in another file.
  auto log = SqliteStore::open({.path = "sagas.db"});
  if (!log.ok()) return 1;
  SystemClock clock;
  EngineOptions opts;
  opts.definitions = {*def};
  auto engine = Engine::open(opts, **log, bus, clock);
  if (!engine.ok()) return 1;
  auto outcome =
      (*engine)
          ->start({.definition = "ReserveStock", .saga_id = "order-42", .input = R"({"qty":1})"})
          .get();
  if (!outcome.ok()) {
    std::fprintf(stderr, "%s\n", outcome.status().to_string().c_str());
    return 1;
  }
  std::printf("saga %s: %s\n", outcome->saga_id.c_str(), status_name(outcome->status));
  return (*engine)->close().ok() ? 0 : 1;
}
