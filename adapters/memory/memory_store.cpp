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
  }
  for (const auto& id : batch.sent) outbox_.erase(id);
  return Status::Ok();
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

Result<std::vector<SagaSummary>> MemoryStore::list(const ListFilter& f) {
  std::lock_guard l(mu_);
  std::vector<SagaSummary> out;
  for (const auto& [id, s] : sagas_) {
    if (f.status && s.summary.status != *f.status) continue;
    if (!f.definition.empty() && s.summary.definition != f.definition) continue;
    out.push_back(s.summary);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.updated_at > b.updated_at; });
  if (out.size() > f.limit) out.resize(f.limit);
  return out;
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
