// EventStore: the durable log port. One commit() per batch of decisions writes the events, the
// saga snapshots, the outbox rows and the timers atomically (the transactional outbox).
//
// Thread-safety: implementations are safe to call from several threads.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "saga/event.hpp"
#include "saga/status.hpp"

namespace saga {

// Everything one decision (or several of one saga) wrote.
struct SagaWrite {
  SagaState state;  // after `events`; the store keeps it as the snapshot while active
  std::vector<Event> events;
  std::vector<Command> outbox;
  std::vector<Timer> timers;
  std::vector<std::string> cancel_timers;
};

// A definition as the log keeps it, so that the log describes itself: the sagas that ran it
// name it by fingerprint on their SagaStarted event; `text` is definition_text().
struct DefinitionRecord {
  std::string name;
  int version = 0;
  std::string fingerprint;
  std::string text;
  TimePoint first_used{};
  bool operator==(const DefinitionRecord&) const = default;
};

// A command whose outbox row can go: answered, timed out or superseded.
struct Settled {
  std::string saga_id;
  std::string command_id;
  bool operator==(const Settled&) const = default;
};

struct WriteBatch {
  std::vector<SagaWrite> sagas;
  // Definitions first used by sagas of this batch; a store keeps one row per fingerprint.
  std::vector<DefinitionRecord> definitions;
  std::vector<Settled> sent;  // outbox rows whose command is settled: delete them

  bool empty() const { return sagas.empty() && sent.empty() && definitions.empty(); }
};

// What Engine::open() needs to continue: O(active sagas), never the whole history.
struct Recovery {
  std::vector<SagaState> active;
  std::vector<Timer> timers;
  // Commands still in flight: send again (same ids). Each saga's in the order it wrote them.
  std::vector<Command> outbox;
};

struct SagaSummary {
  std::string id;
  std::string definition;
  int version = 0;
  SagaStatus status = SagaStatus::kRunning;
  std::string input;
  std::string reason;
  TimePoint started_at{};
  TimePoint updated_at{};
  uint32_t events = 0;
};

// Sagas are listed newest first: by start time descending, then id. A start time never
// changes, so paging with `after` neither skips nor repeats a saga.
struct ListFilter {
  std::optional<SagaStatus> status;
  std::string definition;  // empty: all
  std::optional<TimePoint> updated_since;
  // Resume after this saga (the last one of the previous page): its start time and id.
  std::optional<std::pair<TimePoint, std::string>> after;
  size_t limit = 100;
};

class EventStore {
 public:
  EventStore() = default;
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;
  virtual ~EventStore() = default;

  // Atomic: all of the batch or none of it. Idempotent: committing a batch again after a
  // failure that hid a successful write changes nothing (events are keyed by saga id and seq).
  virtual Status commit(const WriteBatch& batch) = 0;
  virtual Result<Recovery> recover() = 0;
  // The whole log of one saga, in order.
  virtual Result<std::vector<Event>> events(const std::string& saga_id) = 0;
  virtual Result<std::optional<SagaSummary>> find(const std::string& saga_id) = 0;
  virtual Result<std::vector<SagaSummary>> list(const ListFilter& filter) = 0;
  // How many sagas match `filter`, ignoring its limit and cursor.
  virtual Result<uint64_t> count(const ListFilter& filter) = 0;
  // The definition recorded under `fingerprint`; nullopt when the log has none (a log written
  // before definitions were recorded, or a fingerprint no saga ran).
  virtual Result<std::optional<DefinitionRecord>> definition(const std::string& fingerprint) = 0;
  // Every recorded definition, by name and version.
  virtual Result<std::vector<DefinitionRecord>> definitions() = 0;
};

// Forwards every call; subclass it to override only what a test double needs.
class EventStoreWrapper : public EventStore {
 public:
  // REQUIRES: *target outlives the wrapper.
  explicit EventStoreWrapper(EventStore* target) : target_(target) {}
  Status commit(const WriteBatch& batch) override { return target_->commit(batch); }
  Result<Recovery> recover() override { return target_->recover(); }
  Result<std::vector<Event>> events(const std::string& id) override { return target_->events(id); }
  Result<std::optional<SagaSummary>> find(const std::string& id) override {
    return target_->find(id);
  }
  Result<std::vector<SagaSummary>> list(const ListFilter& f) override { return target_->list(f); }
  Result<uint64_t> count(const ListFilter& f) override { return target_->count(f); }
  Result<std::optional<DefinitionRecord>> definition(const std::string& fingerprint) override {
    return target_->definition(fingerprint);
  }
  Result<std::vector<DefinitionRecord>> definitions() override { return target_->definitions(); }
  EventStore* target() const { return target_; }

 private:
  EventStore* target_;
};

}  // namespace saga
