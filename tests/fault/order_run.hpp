// One life of the order service in the test's own process: the engine on a SQLite log and the
// three ledger participants, all over a MemoryTransport. The fault tests run lives of it on a
// SimDisk, end them cleanly or as a crash, and check what the files hold.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "saga/sqlite_store.hpp"
#include "testutil/consistency.hpp"
#include "testutil/ledger_system.hpp"

namespace saga::testutil {

struct OrderRunOptions {
  std::string dir;
  SqliteOptions log;      // path filled in from dir
  SqliteOptions ledgers;  // path filled in from dir
  int partitions = 2;
};

class OrderRun {
 public:
  explicit OrderRun(OrderRunOptions options);
  ~OrderRun();  // a crash if close() was not called

  OrderSystemFiles files() const { return OrderSystemFiles::in(opts_.dir); }

  // Opens the log and the engine; on failure nothing stays open and the error says why.
  Status open();
  // Starts o0..o{n-1} (idempotent) and keeps re-starting those refused, until every one has
  // an outcome or `limit` passes. Returns whether all have one.
  bool run(int n, std::chrono::milliseconds limit);
  // Starts o{from}..o{n-1} once each without waiting.
  void start(int n, int from = 0);
  bool wait(int n, std::chrono::milliseconds limit);
  Status close();
  // Ends the life like a kill: no commit of pending work, files closed as they are.
  void crash();

  // What callers were told: a terminal or stuck outcome per saga, and the refusals.
  std::map<std::string, SagaStatus> outcomes() const;
  std::vector<std::string> refusals() const;
  Engine* engine() { return engine_.get(); }

 private:
  void start_one(const std::string& id, int i);
  void drop();

  OrderRunOptions opts_;
  MemoryTransport bus_;
  std::unique_ptr<LedgerParticipants> participants_;
  SystemClock clock_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Engine> engine_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, SagaStatus> outcomes_;
  std::set<int> refused_;  // waiting to be started again
  std::vector<std::string> refusals_;
};

}  // namespace saga::testutil
