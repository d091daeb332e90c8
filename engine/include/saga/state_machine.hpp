// The pure core. apply() folds events into state; decide() turns an input into new events,
// commands and timers. Both are deterministic: no clock reads (now is an argument), no
// randomness (jitter comes from the seed recorded in SagaStarted), no I/O. Live processing,
// recovery and `sagactl replay` all run these same two functions.
#pragma once

#include <string>
#include <vector>

#include "saga/definition.hpp"
#include "saga/event.hpp"

namespace saga {

enum class ReplyOutcome : uint8_t {
  kOk = 0,
  kRejected,  // business failure: not retried
  kFailed,    // technical failure: retried per policy
};
const char* outcome_name(ReplyOutcome o);

struct Reply {
  std::string command_id;
  ReplyOutcome outcome = ReplyOutcome::kOk;
  std::string data;   // JSON object merged into the saga context (only on kOk)
  std::string error;  // reason on failure
};

struct Input {
  // kSendFailed: the transport could not send reply.command_id; reply.error says why.
  enum class Kind : uint8_t { kReply, kTimer, kOperatorRetry, kOperatorAbort, kSendFailed };
  Kind kind = Kind::kReply;
  Reply reply;         // kReply, kSendFailed
  Timer timer;         // kTimer
  std::string reason;  // operator inputs
};

struct Decision {
  std::vector<Event> events;
  std::vector<Command> commands;
  std::vector<Timer> timers;
  std::vector<std::string> cancel_timers;
  // Empty when the input was acted upon; otherwise why it was dropped (stale or duplicate
  // reply, obsolete timer, operator call on a saga that is not stuck).
  std::string ignored;
  SagaState state;  // the state after `events`, computed with apply()
};

// Applies one event. REQUIRES: event.seq == state.seq + 1 (checked by the callers that load).
void apply(SagaState& state, const Event& event);
// Folds a whole log from an empty state.
SagaState replay(const std::string& saga_id, const std::vector<Event>& events);

// Starts a saga: SagaStarted and the dispatch of the first stage. `def_fingerprint` is
// fingerprint(def), computed here when empty. REQUIRES: check(def).ok(), input is a JSON object.
Decision start(const Definition& def, const std::string& saga_id, const std::string& input,
               const std::string& trace, uint64_t seed, TimePoint now,
               const std::string& def_fingerprint = "");

// Reacts to one input. REQUIRES: state belongs to def (same name and version).
Decision decide(const Definition& def, const SagaState& state, const Input& input, TimePoint now);

// The delay before `attempt` (>= 2) of a step, with jitter drawn from seed; pure.
Duration backoff_delay(const RetryPolicy& policy, int attempt, uint64_t seed, int step,
                       bool compensation);

}  // namespace saga
