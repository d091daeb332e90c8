// The order saga's participant services for the samples. Each owns its own SQLite database;
// its business rows, the participant SDK's record of every command and the reply commit in
// one local transaction (SqliteParticipantStore), so a re-delivered command is answered from
// the record and never applied twice. The tables below carry no duplicate handling of their own.
#pragma once

#include <memory>
#include <string>

#include "saga/participant.hpp"
#include "saga/sqlite_participant_store.hpp"

namespace saga::samples {

// Opens a service's database with the participant record in it; throws std::runtime_error
// when it cannot.
std::unique_ptr<SqliteParticipantStore> open_service_db(const std::string& path);

// inventory: ReserveItems (rejects when stock is short) / ReleaseReservation, and for ShipOrder
// PickItems / ReturnItems.
class InventoryService {
 public:
  InventoryService(Transport& t, const std::string& db_path, int initial_stock);
  Status start() { return participant_.start(); }
  long long stock(const std::string& sku);
  long long reservations(const std::string& status);  // "held" or "released"
  Participant& participant() { return participant_; }

 private:
  std::unique_ptr<SqliteParticipantStore> db_;
  Participant participant_;
};

// payment: ChargeCard (rejects amounts above the card limit; `flaky_every` > 0 fails every
// n-th call technically, to show retries) / RefundPayment.
class PaymentService {
 public:
  PaymentService(Transport& t, const std::string& db_path, long long card_limit,
                 int flaky_every = 0);
  Status start() { return participant_.start(); }
  long long charged_total();
  long long charges_kept();  // charges not refunded
  Participant& participant() { return participant_; }

 private:
  std::unique_ptr<SqliteParticipantStore> db_;
  long long limit_;
  int flaky_every_;
  int calls_ = 0;  // outside the transaction: only decides when to simulate a failure
  Participant participant_;
};

// orders: ConfirmOrder, and for ShipOrder HandToCourier (rejects a region no courier serves)
// and RegisterTracking (rejects while the region's courier has no tracking service).
class OrdersService {
 public:
  OrdersService(Transport& t, const std::string& db_path);
  Status start() { return participant_.start(); }
  long long confirmed();
  Participant& participant() { return participant_; }

 private:
  std::unique_ptr<SqliteParticipantStore> db_;
  Participant participant_;
};

}  // namespace saga::samples
