// order-service: the order service as a process of its own. It embeds the saga engine (its log
// in a SQLite file, commands and replies over Kafka) and is itself the orders participant, with
// its own database. Inventory and payment are other processes (inventory-service,
// payment-service). Places the demo orders, prints each saga's timeline, and exits once all
// have ended; run again with --keep, it answers them from its log.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "cli.hpp"
#include "definitions.hpp"
#include "demo_orders.hpp"
#include "saga/engine.hpp"
#include "saga/sqlite_store.hpp"
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
  saga::apps::add_version(app, "order-service");
  if (auto code = saga::apps::parse_command_line(app, argc, argv)) return *code;

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

  const samples::DemoOrdersResult r = samples::place_demo_orders(**engine, **store);
  const int ended = r.completed + r.compensated;
  st = (*engine)->close();
  std::cout << "\norder-service: " << ended << " of " << ended + r.other
            << " sagas ended; orders confirmed: " << orders.confirmed() << std::endl;
  return r.other == 0 && st.ok() ? 0 : 1;
}
