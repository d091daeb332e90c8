#include "testutil/consistency.hpp"

#include <sqlite3.h>

#include <limits>
#include <map>
#include <set>

#include "saga/sqlite_store.hpp"
#include "saga/state_machine.hpp"

namespace saga::testutil {

OrderSystemFiles OrderSystemFiles::in(const std::string& dir) {
  return {dir + "/saga-log.db", dir + "/inventory.db", dir + "/payment.db", dir + "/orders.db"};
}

std::string ConsistencyReport::summary() const {
  return std::to_string(sagas) + " sagas: " + std::to_string(completed) + " completed, " +
         std::to_string(compensated) + " compensated, " + std::to_string(other) +
         " other | reserved " + std::to_string(reserved) + ", released " +
         std::to_string(released) + ", charged " + std::to_string(charged) + ", refunded " +
         std::to_string(refunded) + ", confirmed " + std::to_string(confirmed) + " | " +
         std::to_string(violations.size()) + " violations";
}

namespace {

// Per saga id, per kind: rows in the ledger. Also checks the file's integrity.
using Counts = std::map<std::string, std::map<std::string, int>>;

void read_file(const std::string& path, Counts* counts, std::vector<std::string>* violations) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    violations->push_back(path + ": cannot open");
    sqlite3_close(db);
    return;
  }
  auto query = [&](const char* sql, auto&& row) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) {
      violations->push_back(path + ": " + sqlite3_errmsg(db));
      return;
    }
    while (sqlite3_step(s) == SQLITE_ROW) row(s);
    sqlite3_finalize(s);
  };
  auto text = [](sqlite3_stmt* s, int i) {
    const auto* p = sqlite3_column_text(s, i);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  };
  query("PRAGMA integrity_check", [&](sqlite3_stmt* s) {
    if (text(s, 0) != "ok") violations->push_back(path + ": integrity_check: " + text(s, 0));
  });
  if (counts) {
    query("SELECT saga_id, kind, count(*) FROM ledger GROUP BY saga_id, kind",
          [&](sqlite3_stmt* s) { (*counts)[text(s, 0)][text(s, 1)] = sqlite3_column_int(s, 2); });
  }
  sqlite3_close(db);
}

}  // namespace

ConsistencyReport check_order_system(const OrderSystemFiles& files,
                                     const std::vector<std::string>& expected,
                                     const std::function<bool(const std::string&)>& declined) {
  ConsistencyReport r;
  auto& v = r.violations;
  Counts ledger;
  read_file(files.saga_log, nullptr, &v);
  for (const auto& f : {files.inventory, files.payment, files.orders}) read_file(f, &ledger, &v);

  auto log = SqliteStore::open({.path = files.saga_log, .read_only = true});
  if (!log.ok()) {
    v.push_back(files.saga_log + ": " + log.status().to_string());
    return r;
  }
  const std::set<std::string> known(expected.begin(), expected.end());
  for (const auto& [id, kinds] : ledger)
    if (!known.count(id)) v.push_back(id + ": in a ledger but never started");

  for (const std::string& id : expected) {
    ++r.sagas;
    auto fail = [&](const std::string& why) { v.push_back(id + ": " + why); };
    auto events = (*log)->events(id);
    auto found = (*log)->find(id);
    if (!events.ok() || !found.ok()) {
      fail("cannot read: " + events.status().to_string() + found.status().to_string());
      continue;
    }
    if (events->empty() || !found->has_value()) {
      fail("lost: not in the saga log");
      ++r.other;
      continue;
    }
    bool completed_event = false, compensated_event = false;
    std::set<int> dispatched;
    int last_compensated_step = std::numeric_limits<int>::max();
    for (size_t i = 0; i < events->size(); ++i) {
      const Event& e = (*events)[i];
      if (e.seq != i + 1)
        fail("event " + std::to_string(i + 1) + " has seq " + std::to_string(e.seq));
      completed_event |= e.type == EventType::kSagaCompleted;
      compensated_event |= e.type == EventType::kSagaCompensated;
      if (e.type == EventType::kStepDispatched) dispatched.insert(e.step);
      if (e.type == EventType::kCompensationDispatched) {
        // Only for a step that ran (or may have: it was dispatched), in reverse order.
        if (!dispatched.count(e.step))
          fail("compensation of step " + std::to_string(e.step) + " before the step ran");
        if (e.step > last_compensated_step)
          fail("compensation of step " + std::to_string(e.step) + " after step " +
               std::to_string(last_compensated_step) + "'s: not in reverse order");
        last_compensated_step = e.step;
      }
    }
    if (completed_event && compensated_event) fail("both completed and compensated");
    const SagaState s = replay(id, *events);
    const SagaSummary& sum = **found;
    if (sum.status != s.status || sum.events != s.seq)
      fail(std::string("summary says ") + status_name(sum.status) + " after " +
           std::to_string(sum.events) + " events, the log folds to " + status_name(s.status) +
           " after " + std::to_string(s.seq));

    auto n = [&](const char* kind) {
      auto it = ledger.find(id);
      if (it == ledger.end()) return 0;
      auto k = it->second.find(kind);
      return k == it->second.end() ? 0 : k->second;
    };
    const int reserve = n("reserve"), release = n("release"), charge = n("charge"),
              refund = n("refund"), confirm = n("confirm");
    r.reserved += reserve;
    r.released += release;
    r.charged += charge;
    r.refunded += refund;
    r.confirmed += confirm;
    for (auto [kind, count] : {std::pair{"reserve", reserve},
                               {"release", release},
                               {"charge", charge},
                               {"refund", refund},
                               {"confirm", confirm}})
      if (count > 1) fail(std::string(kind) + " applied " + std::to_string(count) + " times");
    if (refund > charge) fail("refunded without a charge");
    if (release > reserve) fail("released without a reservation");

    if (s.status == SagaStatus::kCompleted) {
      ++r.completed;
      if (reserve != 1 || charge != 1 || confirm != 1)
        fail("completed but reserve/charge/confirm applied " + std::to_string(reserve) + "/" +
             std::to_string(charge) + "/" + std::to_string(confirm) + " times");
      if (release || refund) fail("completed but released or refunded");
      if (declined(id)) fail("declined but completed");
    } else if (s.status == SagaStatus::kCompensated) {
      ++r.compensated;
      if (confirm) fail("compensated but confirmed");
      if (reserve != release) fail("compensated but its reservation was not released");
      if (charge != refund) fail("compensated but its charge was not refunded");
      if (declined(id) && charge) fail("declined but charged");
    } else {
      ++r.other;
      fail(std::string("not terminal: ") + status_name(s.status) +
           (s.reason.empty() ? "" : " (" + s.reason + ")"));
    }
  }
  return r;
}

}  // namespace saga::testutil
