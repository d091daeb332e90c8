// In-process adapters: the embedded default and the test doubles' base.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "saga/event_store.hpp"
#include "saga/participant_store.hpp"
#include "saga/transport.hpp"

namespace saga {

// An EventStore in memory with the same semantics as SqliteStore (atomic, idempotent commits).
class MemoryStore : public EventStore {
 public:
  Status commit(const WriteBatch& batch) override;
  Result<Recovery> recover() override;
  Result<std::vector<Event>> events(const std::string& saga_id) override;
  Result<std::optional<SagaSummary>> find(const std::string& saga_id) override;
  Result<std::vector<SagaSummary>> list(const ListFilter& filter) override;
  Result<uint64_t> count(const ListFilter& filter) override;
  Result<std::optional<DefinitionRecord>> definition(const std::string& fingerprint) override;
  Result<std::vector<DefinitionRecord>> definitions() override;

  size_t outbox_size() const;
  size_t timer_count() const;

 private:
  struct Saga {
    SagaSummary summary;
    std::vector<Event> events;
    std::optional<SagaState> snapshot;  // while active
  };
  mutable std::mutex mu_;
  std::map<std::string, Saga> sagas_;
  std::map<std::string, std::pair<uint64_t, Command>> outbox_;  // id -> (insertion seq, row)
  uint64_t outbox_seq_ = 0;
  std::map<std::string, Timer> timers_;
  std::map<std::string, DefinitionRecord> definitions_;  // by fingerprint
};

// Delivers each message to its channel's handler synchronously inside send(), then completes
// it. A message for a channel nobody subscribed to fails with kUnavailable (retriable).
// Like a broker's consumer offsets, it keeps every delivered message until its Ack settles it,
// and delivers the unsettled ones again when their channel is subscribed again.
class MemoryTransport : public Transport {
 public:
  MemoryTransport();
  void send(Message message, Completion done) override;
  Status subscribe(const std::string& channel, Handler handler) override;
  void unsubscribe(const std::string& channel) override;

  struct DeadLetter {
    Message message;
    std::string reason;
  };
  std::vector<DeadLetter> dead_letters() const;
  size_t unsettled(const std::string& channel) const;

 private:
  // `running` is held while the handler runs; unsubscribe() clears `active` under it, so no
  // call starts after unsubscribe() returns.
  struct Sub {
    Handler handler;
    std::recursive_mutex running;
    bool active = true;
  };
  struct State {
    std::mutex mu;
    uint64_t next = 0;
    std::unordered_map<std::string, std::map<uint64_t, Message>> unsettled;  // by channel
    std::vector<DeadLetter> dead;
  };
  bool deliver(const std::shared_ptr<Sub>& sub, const std::string& channel, uint64_t seq,
               Message message);
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Sub>> subs_;
  std::shared_ptr<State> state_;
};

namespace testing {

// A ParticipantStore in memory: a test double. It forgets its record when the process ends, so
// a participant on it applies re-sent commands again after a restart. Not for production: use
// SqliteParticipantStore, in the participant's own database.
class VolatileParticipantStore : public ParticipantStore {
 public:
  Result<std::unique_ptr<Transaction>> begin() override;
  Result<std::vector<Message>> unsent() override;

 private:
  class Tx;
  struct Row {
    uint64_t seq = 0;
    Message reply;
    bool sent = false;
  };
  std::mutex mu_;  // held by the open transaction; guards the maps
  std::unordered_map<std::string, StepRecord> steps_;
  std::unordered_map<std::string, Row> replies_;
  uint64_t seq_ = 0;
};

}  // namespace testing
}  // namespace saga
