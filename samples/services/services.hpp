// The order saga's participant services for the samples. Each owns its own SQLite database
// and takes part through the participant SDK.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>

#include "saga/participant.hpp"

struct sqlite3;

namespace saga::samples {

// A small owner of one SQLite file.
class Db {
 public:
  explicit Db(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  void exec(const std::string& sql);
  // First column of the first row as an integer (0 when no row); `args` bind ?1, ?2...
  long long scalar(const std::string& sql, std::initializer_list<std::string> args = {});
  sqlite3* handle() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// inventory: ReserveItems (rejects when stock is short) / ReleaseReservation.
class InventoryService {
 public:
  InventoryService(Transport& t, const std::string& db_path, int initial_stock);
  Status start() { return participant_.start(); }
  long long stock(const std::string& sku);
  long long reservations(const std::string& status);  // "held" or "released"
  Participant& participant() { return participant_; }

 private:
  Db db_;
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
  Participant& participant() { return participant_; }

 private:
  Db db_;
  long long limit_;
  int flaky_every_;
  int calls_ = 0;
  Participant participant_;
};

// orders: ConfirmOrder.
class OrdersService {
 public:
  OrdersService(Transport& t, const std::string& db_path);
  Status start() { return participant_.start(); }
  long long confirmed();

 private:
  Db db_;
  Participant participant_;
};

}  // namespace saga::samples
