// order-demo: an order service that embeds the saga engine. Inventory, payment and orders
// take part in the same process, each with its own SQLite database; the saga log is a fourth
// SQLite file. Places a few orders, prints each saga's timeline and a summary.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "definitions.hpp"
#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "saga/sqlite_store.hpp"
#include "saga/timeline.hpp"
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
  CLI11_PARSE(app, argc, argv);

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

  struct Order {
    const char* id;
    int qty;
    int amount;
    const char* note;
  };
  const Order orders_to_place[] = {
      {"order-1001", 2, 120, "completes"},
      {"order-1002", 1, 900, "card declined at payment: ReleaseReservation runs"},
      {"order-1003", 3, 250, "completes"},
      {"order-1004", 20, 80, "out of stock: nothing to compensate"},
      {"order-1005", 1, 60, "payment gateway fails once: retried, completes"},
  };
  std::vector<std::pair<const Order*, std::future<Result<SagaOutcome>>>> running;
  for (const Order& o : orders_to_place) {
    nlohmann::json input{
        {"order_id", o.id}, {"sku", "widget"}, {"qty", o.qty}, {"amount", o.amount}};
    running.emplace_back(
        &o, (*engine)->start({.definition = "PlaceOrder", .saga_id = o.id, .input = input.dump()}));
  }
  int completed = 0, compensated = 0, other = 0;
  for (auto& [o, fut] : running) {
    auto r = fut.get();
    std::cout << "\n# " << o->id << ": " << o->note << "\n";
    if (!r.ok()) {
      std::cout << "  error: " << r.status().to_string() << "\n";
      ++other;
      continue;
    }
    auto events = (*store)->events(o->id);
    std::cout << format_timeline(o->id, events.ok() ? *events : std::vector<Event>{},
                                 (*engine)->definition("PlaceOrder", 0));
    completed += r->status == SagaStatus::kCompleted;
    compensated += r->status == SagaStatus::kCompensated;
    other += r->status != SagaStatus::kCompleted && r->status != SagaStatus::kCompensated;
  }
  (*engine)->close();

  const long long held = inventory.reservations("held");
  const long long released = inventory.reservations("released");
  const bool consistent = held == completed && orders.confirmed() == completed;
  std::printf(
      "\nsummary: %zu sagas: %d completed, %d compensated, %d other | inventory: %lld held, "
      "%lld released, stock %lld | payment: %lld charged | orders: %lld confirmed | %s\n"
      "data in %s/ (saga log: saga-log.db; try: sqlite3 %s/saga-log.db 'select * from events')\n",
      running.size(), completed, compensated, other, held, released, inventory.stock("widget"),
      payment.charged_total(), orders.confirmed(), consistent ? "consistent" : "INCONSISTENT",
      data_dir.c_str(), data_dir.c_str());
  return consistent && other == 0 ? 0 : 1;
}
