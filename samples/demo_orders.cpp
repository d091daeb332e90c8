#include "demo_orders.hpp"

#include <iostream>
#include <nlohmann/json.hpp>

#include "saga/timeline.hpp"

namespace saga::samples {

DemoOrdersResult place_demo_orders(Engine& engine, EventStore& store) {
  struct Order {
    const char* id;
    int qty;
    int amount;
    const char* note;
  };
  static const Order kOrders[] = {
      {"order-1001", 2, 120, "completes"},
      {"order-1002", 1, 900, "card declined at payment: ReleaseReservation runs"},
      {"order-1003", 3, 250, "completes"},
      {"order-1004", 20, 80, "out of stock: nothing to compensate"},
      {"order-1005", 1, 60, "completes (a failure of the payment gateway on the way is retried)"},
  };
  std::vector<std::pair<const Order*, std::future<Result<SagaOutcome>>>> running;
  for (const Order& o : kOrders) {
    nlohmann::json input{
        {"order_id", o.id}, {"sku", "widget"}, {"qty", o.qty}, {"amount", o.amount}};
    running.emplace_back(
        &o, engine.start({.definition = "PlaceOrder", .saga_id = o.id, .input = input.dump()}));
  }
  DemoOrdersResult out;
  for (auto& [o, fut] : running) {
    auto r = fut.get();
    std::cout << "\n# " << o->id << ": " << o->note << "\n";
    if (!r.ok()) {
      std::cout << "  error: " << r.status().to_string() << "\n";
      ++out.other;
      continue;
    }
    auto events = store.events(o->id);
    std::cout << format_timeline(o->id, events.ok() ? *events : std::vector<Event>{},
                                 engine.definition("PlaceOrder", 0));
    out.completed += r->status == SagaStatus::kCompleted;
    out.compensated += r->status == SagaStatus::kCompensated;
    out.other += r->status != SagaStatus::kCompleted && r->status != SagaStatus::kCompensated;
  }
  return out;
}

}  // namespace saga::samples
