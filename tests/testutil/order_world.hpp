// The reference order saga (../shared/workload.md) with in-memory participants whose effects
// the tests can inspect: reservations made and released, cards charged and refunded.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "saga/definition.hpp"
#include "saga/memory.hpp"
#include "saga/participant.hpp"
#include "saga/transport.hpp"

namespace saga::testutil {

// PlaceOrder: reserve_inventory (ReleaseReservation), charge_payment (RefundPayment),
// confirm_order (pivot, retried forever).
Definition place_order_definition(int version = 1);

struct Ledger {
  std::mutex mu;
  std::map<std::string, int> reserved;  // saga id -> times reserved
  std::map<std::string, int> released;  // saga id -> times released
  std::map<std::string, int> charged, refunded, confirmed;
  std::set<std::string> released_ids;  // reservation ids released

  int count(std::map<std::string, int>& m, const std::string& id) {
    std::lock_guard l(mu);
    auto it = m.find(id);
    return it == m.end() ? 0 : it->second;
  }
};

// The participants of the order saga on `transport`. Payment rejects any order whose input
// has "decline": true, and fails (technically) while `payment_down` is set.
class OrderParticipants {
 public:
  explicit OrderParticipants(Transport& transport);
  Status start();
  Ledger ledger;
  bool payment_down = false;
  bool release_down = false;     // ReleaseReservation fails technically while set
  int release_failures = 0;      // ReleaseReservation fails technically this many more times
  bool confirm_refused = false;  // ConfirmOrder is rejected while set
  // Test doubles of the participants' records (their effects are the in-memory ledger).
  testing::VolatileParticipantStore inventory_record, payment_record, orders_record;
  Participant inventory, payment, orders;
};

}  // namespace saga::testutil
