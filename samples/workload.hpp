// The reference workload's participants (docs/performance.md): inventory, payment and orders
// doing trivial in-memory work, so that a figure measures orchestration. A ChargeCard whose
// input says "fail":true is declined. Shared by saga-bench (embedded and Kafka modes) and by
// sagad --participants workload (saga-bench --mode http).
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "saga/memory.hpp"
#include "saga/participant.hpp"

namespace saga::samples {

struct WorkloadParticipants {
  std::mutex mu;
  std::map<std::string, int> reserved, released;
  std::set<std::string> charged, confirmed;
  // In-memory work, so the participants' record is the in-memory double.
  testing::VolatileParticipantStore inventory_record, payment_record, orders_record;
  Participant inventory, payment, orders;

  explicit WorkloadParticipants(Transport& t);
  Status start();
};

}  // namespace saga::samples
