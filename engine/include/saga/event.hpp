// Events, saga state, commands and timers: the data of the pure core (state_machine.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "saga/definition.hpp"

namespace saga {

// Wall-clock milliseconds: durable timers must keep their meaning across restarts.
using TimePoint = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

inline int64_t to_ms(TimePoint t) {
  return t.time_since_epoch().count();
}
inline TimePoint from_ms(int64_t ms) {
  return TimePoint(std::chrono::milliseconds(ms));
}

enum class EventType : uint8_t {
  kSagaStarted = 1,
  kStepDispatched,
  kStepSucceeded,
  kStepFailed,    // value bits: kFinal (compensation begins), kRejected (see below)
  kStepTimedOut,  // value=1: final; the step may have happened and will be compensated
  kRetryScheduled,
  kCompensationDispatched,
  kCompensationSucceeded,
  kCompensationFailed,  // value=1: final (limit reached); detail says why
  kSagaCompleted,
  kSagaCompensated,
  kSagaStuck,           // value=1: stuck while compensating
  kOperatorIntervened,  // detail: "retry" or "abort"
  kCommandNotSent,      // the transport refused the current attempt's command; detail: why
};

const char* event_name(EventType type);
bool parse_event_name(const std::string& name, EventType* out);
struct Event;
// How the command an event settles ended: "ok", "rejected", "failed", "timed_out" or
// "not_sent"; nullptr for events that settle none.
const char* event_outcome(const Event& e);

// One entry of a saga's append-only log. Which fields mean what depends on `type`:
//   SagaStarted:      detail = definition name, attempt = definition version, data = input JSON,
//                     value = seed for jitter, step = number of steps, trace = traceparent,
//                     fingerprint = fingerprint(definition) (empty in logs of older versions)
//   StepSucceeded:    data = reply data (JSON object merged into the saga context)
//   StepFailed/...:   detail = reason; when final, data = the saga's failure reason
//   RetryScheduled:   attempt = the attempt it schedules, value = delay in ms,
//                     compensation = whether it is a compensation retry
//   SagaStuck:        detail = reason
//   CommandNotSent:   step, attempt, compensation of the command; detail = the transport's error
struct Event {
  EventType type = EventType::kSagaStarted;
  uint32_t seq = 0;  // 1-based position in the saga's log
  TimePoint at{};
  int step = -1;
  int attempt = 0;
  bool compensation = false;
  int64_t value = 0;
  std::string detail;
  std::string data;
  std::string trace;
  std::string fingerprint;

  bool operator==(const Event&) const = default;

  // StepFailed's value: final (compensation begins: no attempt left, a rejection, or the saga
  // already compensating), and whether the participant rejected the command (a business
  // outcome) rather than failed (a technical one). A rejection after the pivot is not final
  // (the saga gets stuck). Logs written before kRejected existed have 1 or 0 for a rejection.
  static constexpr int64_t kFinal = 1, kRejected = 2;
  bool final() const { return (value & kFinal) != 0; }
  bool rejected() const { return type == EventType::kStepFailed && (value & kRejected) != 0; }
};

enum class SagaStatus : uint8_t {
  kRunning = 0,
  kCompensating,
  kCompleted,
  kCompensated,
  kStuck,
  kAborted,
};
const char* status_name(SagaStatus status);
// status_name() read back; false for any other text.
bool parse_status_name(std::string_view name, SagaStatus* out);
inline bool is_terminal(SagaStatus s) {
  return s == SagaStatus::kCompleted || s == SagaStatus::kCompensated || s == SagaStatus::kAborted;
}

enum class StepPhase : uint8_t {
  kPending = 0,
  kRunning,  // action dispatched, awaiting reply or timeout
  kBackoff,  // action failed, retry scheduled
  kSucceeded,
  kFailed,        // settled without effect, or gave up (see maybe_applied)
  kCompensating,  // compensation dispatched
  kCompBackoff,   // compensation failed, retry scheduled
  kCompensated,
};
const char* phase_name(StepPhase phase);

struct StepProgress {
  StepPhase phase = StepPhase::kPending;
  int attempt = 0;             // current or last action attempt, 1-based
  int comp_attempt = 0;        // current or last compensation attempt
  bool maybe_applied = false;  // an attempt timed out: it may have happened at the participant
  std::string error;           // last failure reason
  std::string undelivered;     // why the current attempt's command could not be sent, if so

  bool operator==(const StepProgress&) const = default;
};

// The state of one saga: the fold of its events with apply().
struct SagaState {
  std::string id;
  std::string definition;
  int version = 0;
  uint64_t seed = 0;
  std::string input;    // JSON object given at start
  std::string context;  // input merged with the data of every successful reply
  std::string trace;
  SagaStatus status = SagaStatus::kRunning;
  bool stuck_compensating = false;  // where an operator retry resumes
  std::vector<StepProgress> steps;
  uint32_t seq = 0;  // events applied
  TimePoint started_at{};
  TimePoint updated_at{};
  std::string reason;       // why it failed, got stuck or was aborted (what it ends with)
  std::string failure;      // the step failure that started compensation, kept across retries
  std::string fingerprint;  // of the definition it started with (empty: not recorded)

  bool operator==(const SagaState&) const = default;
};

// A message the orchestrator sends to a participant. The id is stable:
// "<saga id>/<step name>/a<attempt>" for actions, ".../c<attempt>" for compensations.
struct Command {
  std::string id;
  std::string saga_id;
  std::string participant;
  std::string type;
  bool compensation = false;
  std::string payload;  // the saga context, JSON
  std::string trace;

  bool operator==(const Command&) const = default;
};

std::string command_id(const std::string& saga_id, const std::string& step, bool compensation,
                       int attempt);
struct CommandIdParts {
  std::string saga_id;
  std::string step;
  bool compensation = false;
  int attempt = 0;
};
bool parse_command_id(const std::string& id, CommandIdParts* out);

enum class TimerKind : uint8_t { kTimeout = 1, kRetry = 2 };

// A durable timer. Id: "<command id>#t" (attempt timeout) or "<command id>#r" (retry).
struct Timer {
  std::string id;
  std::string saga_id;
  TimePoint due{};
  TimerKind kind = TimerKind::kTimeout;
  int step = 0;
  int attempt = 0;
  bool compensation = false;

  bool operator==(const Timer&) const = default;
};

}  // namespace saga
