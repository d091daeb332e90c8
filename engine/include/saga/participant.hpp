// The participant SDK: the receiving half of the protocol, for services that take part in
// sagas. It enforces the rules the orchestrator relies on, across restarts, from a record kept
// in the participant's own database (ParticipantStore):
//  - every command id is answered once: a repeat gets the recorded reply, without the handler
//    (a rejection stays a rejection even if the handler would now succeed);
//  - an action runs at most once per saga step once it succeeded: a later attempt gets the
//    recorded success;
//  - a compensation for an action never seen is a recorded no-op that succeeds and fences the
//    action: an action arriving after its compensation is refused (rejected), never run;
//  - a compensation runs at most once.
//
// The handler runs inside the participant's local transaction and writes its business rows
// through the ParticipantTx it is given; the record and the reply commit with them, and the
// reply leaves only after that commit. A handler that fails (rejected or failed) or throws is
// rolled back; its reply is recorded. A handler may do outside the transaction only what may
// safely happen again or happen without the transaction committing: a crash before the commit
// runs it again on redelivery (logging and metrics are fine; calling a payment gateway is not,
// unless the call is idempotent on the command id).
//
// Thread-safety: handlers run on the transport's threads, one command at a time per store.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "saga/participant_store.hpp"
#include "saga/transport.hpp"

namespace saga {

struct CommandContext {
  std::string saga_id;
  std::string command_id;
  std::string step;
  int attempt = 0;
  std::string type;
  std::string payload;  // the saga context, JSON
  std::string traceparent;
};

struct ParticipantStats {
  uint64_t actions_run = 0, compensations_run = 0;
  uint64_t duplicates = 0;          // answered from the record, not run again
  uint64_t noop_compensations = 0;  // compensation of an action never seen
  uint64_t refused_actions = 0;     // action after its compensation
  uint64_t undecodable = 0;
  // The local transaction failed: answered `failed` (nothing recorded), or not answered at all
  // when COMMIT itself failed (the effect may be durable; the orchestrator's timeout decides).
  uint64_t store_failures = 0;
  uint64_t replies_resent = 0;  // unsent replies sent again at start()
};

class Participant {
 public:
  using Handler = std::function<ParticipantReply(const CommandContext&, ParticipantTx&)>;
  // For handlers whose effect is not in the participant's database (tests, benchmarks).
  using PlainHandler = std::function<ParticipantReply(const CommandContext&)>;

  // REQUIRES: *transport and *store outlive the participant.
  Participant(Transport& transport, std::string channel, ParticipantStore& store);
  ~Participant();
  Participant(const Participant&) = delete;
  Participant& operator=(const Participant&) = delete;

  Participant& on(const std::string& command_type, Handler action);
  Participant& on(const std::string& command_type, PlainHandler action);
  Participant& on_compensate(const std::string& command_type, Handler compensation);
  Participant& on_compensate(const std::string& command_type, PlainHandler compensation);
  // Subscribes, then sends again the replies committed before a restart but never acknowledged.
  Status start();
  // Unsubscribes and records the acknowledged replies.
  void stop();
  ParticipantStats stats() const;
  const std::string& channel() const { return channel_; }

 private:
  void handle(Message m, Ack ack);
  Result<ParticipantReply> apply_rules(ParticipantStore::Transaction& tx, const Message& m,
                                       const CommandContext& ctx, StepRecord& rec);
  void send_reply(Message reply);
  std::vector<std::string> take_acked();

  Transport& transport_;
  std::string channel_;
  ParticipantStore& store_;
  std::map<std::string, Handler> actions_, compensations_;
  mutable std::mutex mu_;  // one command at a time; guards stats_
  ParticipantStats stats_;
  // Acknowledged replies, marked sent in the next transaction. Shared with send completions,
  // which may run after the participant is gone.
  struct Acks {
    std::mutex mu;
    std::vector<std::string> ids;
  };
  std::shared_ptr<Acks> acks_ = std::make_shared<Acks>();
  bool started_ = false;
};

}  // namespace saga
