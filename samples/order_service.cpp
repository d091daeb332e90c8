// order-service: the order service as a process of its own. It embeds the saga engine (its log
// in a SQLite file, commands and replies over Kafka) and is itself the orders participant, with
// its own database. Inventory and payment are other processes (inventory-service,
// payment-service). Places the demo orders, prints each saga's timeline, and exits once all
// have ended; run again with --keep, it answers them from its log.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "definitions.hpp"
#include "saga/engine.hpp"
#include "saga/sqlite_store.hpp"
#include "saga/timeline.hpp"
#include "services/kafka_process.hpp"
#include "services/services.hpp"

using namespace saga;

int main(int argc, char** argv) {
  CLI::App app{"order-service: places orders through the PlaceOrder saga over Kafka",
               "order-service"};
  std::string bootstrap, data_dir = "order-service-data";
  std::string saga_file = SAGA_SAMPLES_DIR "/place_order.saga";
  bool keep = false;
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers (host:port)")->required();
  app.add_option("--data", data_dir, "Folder for the saga log and the orders database");
  app.add_option("--saga-file", saga_file, "Saga definitions (.saga)")->check(CLI::ExistingFile);
  app.add_flag("--keep", keep, "Keep the data of earlier runs");
  CLI11_PARSE(app, argc, argv);

  auto defs = samples::load_definitions(saga_file);
  if (!defs.ok()) {
    std::cerr << defs.status().message() << "\n";
    return 1;
  }
  namespace fs = std::filesystem;
  if (!keep) fs::remove_all(data_dir);
  fs::create_directories(data_dir);

  auto bus = samples::open_kafka(bootstrap, "order-service");
  if (!bus) return 1;
  auto store = SqliteStore::open({.path = data_dir + "/saga-log.db"});
  if (!store.ok()) {
    std::cerr << store.status().to_string() << "\n";
    return 1;
  }
  samples::OrdersService orders(*bus, data_dir + "/orders.db");
  SystemClock clock;
  EngineOptions opts;
  opts.definitions = *defs;
  opts.reply_channel = "orchestrator.replies";
  Status st = orders.start();
  auto engine = Engine::open(opts, **store, *bus, clock);
  if (st.ok()) st = engine.status();
  if (st.ok()) st = bus->wait_ready(Duration(60000));
  if (!st.ok()) {
    std::cerr << "order-service: " << st.to_string() << "\n";
    return 1;
  }

  struct Order {
    const char* id;
    int qty;
    int amount;
    const char* note;
  };
  const Order to_place[] = {
      {"order-1001", 2, 120, "completes"},
      {"order-1002", 1, 900, "card declined at payment: ReleaseReservation runs"},
      {"order-1003", 3, 250, "completes"},
      {"order-1004", 20, 80, "out of stock: nothing to compensate"},
      {"order-1005", 1, 60, "completes (a payment failure on the way is retried)"},
  };
  std::vector<std::pair<const Order*, std::future<Result<SagaOutcome>>>> running;
  for (const Order& o : to_place) {
    nlohmann::json input{
        {"order_id", o.id}, {"sku", "widget"}, {"qty", o.qty}, {"amount", o.amount}};
    running.emplace_back(
        &o, (*engine)->start({.definition = "PlaceOrder", .saga_id = o.id, .input = input.dump()}));
  }
  int ended = 0;
  for (auto& [o, fut] : running) {
    auto r = fut.get();
    std::cout << "\n# " << o->id << ": " << o->note << "\n";
    if (!r.ok()) {
      std::cout << "  error: " << r.status().to_string() << "\n";
      continue;
    }
    ++ended;
    auto events = (*store)->events(o->id);
    std::cout << format_timeline(o->id, events.ok() ? *events : std::vector<Event>{},
                                 (*engine)->definition("PlaceOrder", 0));
  }
  st = (*engine)->close();
  std::cout << "\norder-service: " << ended << " of " << running.size()
            << " sagas ended; orders confirmed: " << orders.confirmed() << std::endl;
  return ended == static_cast<int>(running.size()) && st.ok() ? 0 : 1;
}
