#include "saga/memory.hpp"

#include <algorithm>

namespace saga {

Status MemoryStore::commit(const WriteBatch& batch) {
  std::lock_guard l(mu_);
  for (const SagaWrite& w : batch.sagas) {
    Saga& s = sagas_[w.state.id];
    for (const Event& e : w.events)
      if (e.seq > s.events.size()) s.events.push_back(e);  // idempotent on (saga, seq)
    s.summary.id = w.state.id;
    s.summary.definition = w.state.definition;
    s.summary.version = w.state.version;
    s.summary.status = w.state.status;
    s.summary.input = w.state.input;
    s.summary.reason = w.state.reason;
    s.summary.started_at = w.state.started_at;
    s.summary.updated_at = w.state.updated_at;
    s.summary.events = w.state.seq;
    if (is_terminal(w.state.status)) {
      s.snapshot.reset();
    } else {
      s.snapshot = w.state;
    }
    for (const auto& id : w.cancel_timers) timers_.erase(id);
    for (const Timer& t : w.timers) timers_[t.id] = t;
    for (const Command& c : w.outbox) outbox_.emplace(c.id, std::make_pair(outbox_seq_++, c));
    if (is_terminal(w.state.status)) {  // a finished saga keeps nothing pending, as SqliteStore
      std::erase_if(timers_, [&](const auto& t) { return t.second.saga_id == w.state.id; });
      std::erase_if(outbox_, [&](const auto& c) { return c.second.second.saga_id == w.state.id; });
    }
  }
  for (const Settled& s : batch.sent) {
    auto it = outbox_.find(s.command_id);
    if (it != outbox_.end() && it->second.second.saga_id == s.saga_id) outbox_.erase(it);
  }
  for (const DefinitionRecord& d : batch.definitions) definitions_.emplace(d.fingerprint, d);
  return Status::Ok();
}

Result<std::optional<DefinitionRecord>> MemoryStore::definition(const std::string& fingerprint) {
  std::lock_guard l(mu_);
  auto it = definitions_.find(fingerprint);
  if (it == definitions_.end()) return std::optional<DefinitionRecord>();
  return std::optional<DefinitionRecord>(it->second);
}

Result<std::vector<DefinitionRecord>> MemoryStore::definitions() {
  std::lock_guard l(mu_);
  std::vector<DefinitionRecord> out;
  for (const auto& [fp, d] : definitions_) out.push_back(d);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.name, a.version, a.first_used) < std::tie(b.name, b.version, b.first_used);
  });
  return out;
}

Result<Recovery> MemoryStore::recover() {
  std::lock_guard l(mu_);
  Recovery r;
  for (const auto& [id, s] : sagas_)
    if (s.snapshot) r.active.push_back(*s.snapshot);
  for (const auto& [id, t] : timers_) r.timers.push_back(t);
  std::vector<const std::pair<uint64_t, Command>*> rows;
  for (const auto& [id, row] : outbox_) rows.push_back(&row);
  std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (const auto* row : rows) r.outbox.push_back(row->second);
  return r;
}

Result<std::vector<Event>> MemoryStore::events(const std::string& saga_id) {
  std::lock_guard l(mu_);
  auto it = sagas_.find(saga_id);
  if (it == sagas_.end()) return std::vector<Event>{};
  return it->second.events;
}

Result<std::optional<SagaSummary>> MemoryStore::find(const std::string& saga_id) {
  std::lock_guard l(mu_);
  auto it = sagas_.find(saga_id);
  if (it == sagas_.end()) return std::optional<SagaSummary>{};
  return std::optional<SagaSummary>{it->second.summary};
}

namespace {
bool matches(const SagaSummary& s, const ListFilter& f) {
  if (f.status && s.status != *f.status) return false;
  if (!f.definition.empty() && s.definition != f.definition) return false;
  if (f.updated_since && s.updated_at < *f.updated_since) return false;
  return true;
}
bool newer_first(const SagaSummary& a, const SagaSummary& b) {
  return a.started_at != b.started_at ? a.started_at > b.started_at : a.id < b.id;
}
}  // namespace

Result<std::vector<SagaSummary>> MemoryStore::list(const ListFilter& f) {
  std::lock_guard l(mu_);
  std::vector<SagaSummary> out;
  SagaSummary cursor;
  if (f.after) {
    cursor.started_at = f.after->first;
    cursor.id = f.after->second;
  }
  for (const auto& [id, s] : sagas_) {
    if (!matches(s.summary, f)) continue;
    if (f.after && !newer_first(cursor, s.summary)) continue;
    out.push_back(s.summary);
  }
  std::sort(out.begin(), out.end(), newer_first);
  if (out.size() > f.limit) out.resize(f.limit);
  return out;
}

Result<uint64_t> MemoryStore::count(const ListFilter& f) {
  std::lock_guard l(mu_);
  uint64_t n = 0;
  for (const auto& [id, s] : sagas_) n += matches(s.summary, f);
  return n;
}

size_t MemoryStore::outbox_size() const {
  std::lock_guard l(mu_);
  return outbox_.size();
}

size_t MemoryStore::timer_count() const {
  std::lock_guard l(mu_);
  return timers_.size();
}

}  // namespace saga
