// order-demo: an order service that embeds the saga engine. Inventory, payment and orders
// take part in the same process, each with its own SQLite database; the saga log is a fourth
// SQLite file. Places a few orders, prints each saga's timeline and a summary.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli.hpp"
#include "definitions.hpp"
#include "demo_orders.hpp"
#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "saga/sqlite_store.hpp"
#include "services/services.hpp"

using namespace saga;

int main(int argc, char** argv) {
  CLI::App app{"order-demo: places orders through the PlaceOrder saga, embedded"};
  std::string data_dir = "order-demo-data";
  std::string saga_file = SAGA_SAMPLES_DIR "/place_order.saga";
  bool keep = false;
  app.add_option("--data", data_dir, "Folder for the four SQLite databases");
  app.add_option("--saga-file", saga_file, "Saga definitions (.saga)")->check(CLI::ExistingFile);
  app.add_flag("--keep", keep, "Keep the data of earlier runs (sagas are then not run again)");
  saga::apps::add_version(app, "order-demo");
  if (auto code = saga::apps::parse_command_line(app, argc, argv)) return *code;

  auto defs = samples::load_definitions(saga_file);
  if (!defs.ok()) {
    std::cerr << defs.status().message() << "\n";
    return 1;
  }
  namespace fs = std::filesystem;
  if (!keep) fs::remove_all(data_dir);
  fs::create_directories(data_dir);

  MemoryTransport bus;
  samples::InventoryService inventory(bus, data_dir + "/inventory.db", /*initial_stock=*/10);
  samples::PaymentService payment(bus, data_dir + "/payment.db", /*card_limit=*/500,
                                  /*flaky_every=*/4);
  samples::OrdersService orders(bus, data_dir + "/orders.db");
  for (Status st : {inventory.start(), payment.start(), orders.start()}) {
    if (!st.ok()) {
      std::cerr << st.to_string() << "\n";
      return 1;
    }
  }

  auto store = SqliteStore::open({.path = data_dir + "/saga-log.db"});
  if (!store.ok()) {
    std::cerr << store.status().to_string() << "\n";
    return 1;
  }
  SystemClock clock;
  EngineOptions opts;
  opts.definitions = *defs;
  auto engine = Engine::open(opts, **store, bus, clock);
  if (!engine.ok()) {
    std::cerr << engine.status().to_string() << "\n";
    return 1;
  }

  const samples::DemoOrdersResult r = samples::place_demo_orders(**engine, **store);
  const int completed = r.completed, compensated = r.compensated, other = r.other;
  (*engine)->close();

  const long long held = inventory.reservations("held");
  const long long released = inventory.reservations("released");
  // Each completed order, and only those, holds its reservation, keeps its charge and is
  // confirmed, by the three services' own databases.
  const bool consistent =
      held == completed && payment.charges_kept() == completed && orders.confirmed() == completed;
  std::printf(
      "\nsummary: %zu sagas: %d completed, %d compensated, %d other | inventory: %lld held, "
      "%lld released, stock %lld | payment: %lld charged | orders: %lld confirmed | %s\n"
      "data in %s/ (saga log: saga-log.db; try: sqlite3 %s/saga-log.db 'select * from events')\n",
      static_cast<size_t>(completed + compensated + other), completed, compensated, other, held,
      released, inventory.stock("widget"), payment.charged_total(), orders.confirmed(),
      consistent ? "consistent" : "INCONSISTENT", data_dir.c_str(), data_dir.c_str());
  return consistent && other == 0 ? 0 : 1;
}
