// The checker every crash and fault test shares: reads the saga log and each participant's
// own ledger after a run and lists every broken promise.
//
// Ledgers are append-only tables `ledger(saga_id TEXT, kind TEXT)` in each participant's file
// (a row per applied effect, so a duplicate shows): inventory "reserve"/"release", payment
// "charge"/"refund", orders "confirm".
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace saga::testutil {

struct OrderSystemFiles {
  std::string saga_log, inventory, payment, orders;
  // The four files of a folder laid out as the crash harness writes it.
  static OrderSystemFiles in(const std::string& dir);
};

struct ConsistencyReport {
  int sagas = 0, completed = 0, compensated = 0, other = 0;
  int reserved = 0, released = 0, charged = 0, refunded = 0, confirmed = 0;
  std::vector<std::string> violations;  // empty: consistent
  std::string summary() const;
};

// Checks, for every id in `expected` (none may be lost): terminal; not both completed and
// compensated; events numbered 1..n; summary row equal to the fold of the log; compensations
// dispatched in reverse step order and only for steps that were dispatched; each action and
// compensation applied at most once; a completed saga reserved, charged and confirmed exactly
// once and never released or refunded; a compensated saga never confirmed, its reservation
// released if made, its charge refunded if made, no refund without a charge; `declined` sagas
// compensated and never charged; PRAGMA integrity_check clean on every file.
ConsistencyReport check_order_system(const OrderSystemFiles& files,
                                     const std::vector<std::string>& expected,
                                     const std::function<bool(const std::string&)>& declined);

}  // namespace saga::testutil
