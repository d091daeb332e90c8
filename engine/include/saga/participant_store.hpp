// ParticipantStore: where a participant keeps its record of what it applied, in its own
// database, so that the record and the handler's business effect commit in one local
// transaction (see participant.hpp for the rules the record serves).
//
//   command -> begin() -> look up the command id and the step's record
//           -> savepoint -> handler writes business rows through business()
//              (a handler that fails or throws is rolled back to the savepoint)
//           -> record(step record, reply) -> commit() -> only then the reply is sent
//
// The reply rows are also the participant's outbox: unsent() lists the replies committed but
// not yet acknowledged by the transport, to be sent again after a restart.
//
// Adapters: SqliteParticipantStore (adapters/sqlite, the durable one) and
// testing::VolatileParticipantStore (adapters/memory, a test double that forgets on exit).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "saga/status.hpp"
#include "saga/transport.hpp"

namespace saga {

struct ParticipantReply {
  ReplyOutcome outcome = ReplyOutcome::kOk;
  std::string data = "{}";  // JSON object merged into the saga context
  std::string error;

  static ParticipantReply ok(std::string data = "{}") { return {ReplyOutcome::kOk, data, ""}; }
  static ParticipantReply rejected(std::string why) { return {ReplyOutcome::kRejected, "{}", why}; }
  static ParticipantReply failed(std::string why) { return {ReplyOutcome::kFailed, "{}", why}; }

  bool operator==(const ParticipantReply&) const = default;
};

// What a participant remembers of one saga step (saga id + step name).
struct StepRecord {
  bool action_done = false;  // the action succeeded; later attempts get action_reply
  bool compensated = false;  // compensated, or fenced by a compensation of an unseen action
  ParticipantReply action_reply;

  bool operator==(const StepRecord&) const = default;
};

// The handle a handler writes its business rows through: the participant's local transaction.
// Each adapter has its own type (SqliteTx for SqliteParticipantStore).
class ParticipantTx {
 public:
  virtual ~ParticipantTx() = default;
};

class ParticipantStore {
 public:
  // One local transaction. Destroying it without commit() rolls everything back.
  class Transaction {
   public:
    virtual ~Transaction() = default;
    virtual ParticipantTx& business() = 0;
    virtual Result<StepRecord> step(const std::string& saga_id, const std::string& step) = 0;
    // The reply recorded for a command id, if it was answered before.
    virtual Result<std::optional<Message>> reply(const std::string& command_id) = 0;
    // Around the handler: its writes are undone by rollback_to_savepoint().
    virtual Status savepoint() = 0;
    virtual Status rollback_to_savepoint() = 0;
    // Writes the step's record and the reply to `reply.command_id` (an unsent outbox row).
    virtual Status record(const std::string& saga_id, const std::string& step,
                          const StepRecord& rec, const Message& reply) = 0;
    // Replies the transport acknowledged (written lazily: a crash re-sends a few).
    virtual Status mark_sent(const std::vector<std::string>& command_ids) = 0;
    virtual Status commit() = 0;
  };

  ParticipantStore() = default;
  ParticipantStore(const ParticipantStore&) = delete;
  ParticipantStore& operator=(const ParticipantStore&) = delete;
  virtual ~ParticipantStore() = default;

  // Transactions are serialised: begin() waits while another one is open.
  virtual Result<std::unique_ptr<Transaction>> begin() = 0;
  // Committed replies not yet acknowledged, in commit order.
  virtual Result<std::vector<Message>> unsent() = 0;
};

}  // namespace saga
