// inventory-service and payment-service: one participant of the order saga each, a process of
// its own with its own SQLite database, taking commands from Kafka. Prints "ready" once its
// consumer holds its partitions; stops cleanly on SIGTERM or SIGINT.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli.hpp"
#include "services/kafka_process.hpp"
#include "services/services.hpp"

using namespace saga;

int main(int argc, char** argv) {
  samples::block_stop_signals();
  const std::string name = SERVICE_NAME;
  CLI::App app{name + ": the order saga's " + name + " participant, over Kafka", name};
  std::string bootstrap, db = name + ".db";
  int stock = 10, flaky_every = 0;
  long long card_limit = 500;
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers (host:port)")->required();
  app.add_option("--db", db, "This service's SQLite database");
  if (name == "inventory-service") {
    app.add_option("--stock", stock, "Widgets in stock when the database is new");
  } else {
    app.add_option("--card-limit", card_limit, "Charges above it are declined");
    app.add_option("--flaky-every", flaky_every, "Fail every n-th charge technically (retried)");
  }
  saga::apps::add_version(app, name);
  if (auto code = saga::apps::parse_command_line(app, argc, argv)) return *code;

  auto bus = samples::open_kafka(bootstrap, name);
  if (!bus) return 1;
  try {
    std::unique_ptr<samples::InventoryService> inventory;
    std::unique_ptr<samples::PaymentService> payment;
    Status st;
    if (name == "inventory-service") {
      inventory = std::make_unique<samples::InventoryService>(*bus, db, stock);
      st = inventory->start();
    } else {
      payment = std::make_unique<samples::PaymentService>(*bus, db, card_limit, flaky_every);
      st = payment->start();
    }
    if (st.ok()) st = bus->wait_ready(Duration(60000));
    if (!st.ok()) {
      std::cerr << name << ": " << st.to_string() << "\n";
      return 1;
    }
    std::cout << name << ": ready" << std::endl;
    samples::wait_for_stop();
    std::cout << name << ": stopping" << std::endl;
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
