// The order system of the crash and fault tests: three participants, each on its own SQLite
// file with an append-only ledger (the layout check_order_system reads) and nothing idempotent
// in its own code, so the participant SDK's record is all that stands between a re-sent command
// and a duplicate. Orders whose input has "decline":true are rejected at payment; every 17th
// charge fails technically (retried).
#pragma once

#include <atomic>
#include <memory>

#include "saga/definition.hpp"
#include "saga/participant.hpp"
#include "saga/sqlite_participant_store.hpp"
#include "saga/sqlite_store.hpp"
#include "saga/transport.hpp"
#include "testutil/consistency.hpp"

namespace saga::testutil {

// PlaceOrder with a 1 s timeout, 4 attempts per action, compensations and the pivot retried
// forever.
Definition ledger_order_definition();

class LedgerParticipants {
 public:
  // `base` gives the SQLite options (vfs, sync) for the three files of `files`; exits the
  // process with a message when a file cannot be opened (a harness, not a library).
  LedgerParticipants(Transport& bus, const OrderSystemFiles& files, const SqliteOptions& base);
  Status start();

  std::unique_ptr<SqliteParticipantStore> inventory_db, payment_db, orders_db;
  Participant inventory, payment, orders;

 private:
  std::atomic<uint64_t> charges_{0};
};

// The input of order i: every tenth is declined.
std::string order_input(int i);
bool order_declined(const std::string& saga_id);  // for ids "o<i>"

}  // namespace saga::testutil
