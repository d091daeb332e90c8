// The five orders both demos place (order-demo embedded, order-service over Kafka).
#pragma once

#include <vector>

#include "saga/engine.hpp"
#include "saga/event_store.hpp"

namespace saga::samples {

struct DemoOrdersResult {
  int completed = 0, compensated = 0, other = 0;
};

// Starts the demo orders on `engine`, prints each saga's timeline (read from `store`) as it
// ends, and counts the outcomes.
DemoOrdersResult place_demo_orders(Engine& engine, EventStore& store);

}  // namespace saga::samples
