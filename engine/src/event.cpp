#include <charconv>
#include <cstring>

#include "saga/event.hpp"
#include "saga/state_machine.hpp"

namespace saga {

namespace {
struct EventName {
  EventType type;
  const char* name;
};
constexpr EventName kEventNames[] = {
    {EventType::kSagaStarted, "SagaStarted"},
    {EventType::kStepDispatched, "StepDispatched"},
    {EventType::kStepSucceeded, "StepSucceeded"},
    {EventType::kStepFailed, "StepFailed"},
    {EventType::kStepTimedOut, "StepTimedOut"},
    {EventType::kRetryScheduled, "RetryScheduled"},
    {EventType::kCompensationDispatched, "CompensationDispatched"},
    {EventType::kCompensationSucceeded, "CompensationSucceeded"},
    {EventType::kCompensationFailed, "CompensationFailed"},
    {EventType::kSagaCompleted, "SagaCompleted"},
    {EventType::kSagaCompensated, "SagaCompensated"},
    {EventType::kSagaStuck, "SagaStuck"},
    {EventType::kOperatorIntervened, "OperatorIntervened"},
    {EventType::kCommandNotSent, "CommandNotSent"},
};
}  // namespace

const char* event_name(EventType type) {
  for (const auto& e : kEventNames)
    if (e.type == type) return e.name;
  return "Unknown";
}

bool parse_event_name(const std::string& name, EventType* out) {
  for (const auto& e : kEventNames) {
    if (name == e.name) {
      *out = e.type;
      return true;
    }
  }
  return false;
}

const char* event_outcome(const Event& e) {
  switch (e.type) {
    case EventType::kStepSucceeded:
    case EventType::kCompensationSucceeded:
      return "ok";
    case EventType::kStepFailed:
      return e.rejected() ? "rejected" : "failed";
    case EventType::kCompensationFailed:
      return "failed";
    case EventType::kStepTimedOut:
      return "timed_out";
    case EventType::kCommandNotSent:
      return "not_sent";
    default:
      return nullptr;
  }
}

bool parse_status_name(std::string_view name, SagaStatus* out) {
  for (int i = 0; i <= static_cast<int>(SagaStatus::kAborted); ++i) {
    if (name == status_name(static_cast<SagaStatus>(i))) {
      *out = static_cast<SagaStatus>(i);
      return true;
    }
  }
  return false;
}

const char* status_name(SagaStatus s) {
  switch (s) {
    case SagaStatus::kRunning:
      return "running";
    case SagaStatus::kCompensating:
      return "compensating";
    case SagaStatus::kCompleted:
      return "completed";
    case SagaStatus::kCompensated:
      return "compensated";
    case SagaStatus::kStuck:
      return "stuck";
    case SagaStatus::kAborted:
      return "aborted";
  }
  return "unknown";
}

const char* phase_name(StepPhase p) {
  switch (p) {
    case StepPhase::kPending:
      return "pending";
    case StepPhase::kRunning:
      return "running";
    case StepPhase::kBackoff:
      return "backoff";
    case StepPhase::kSucceeded:
      return "succeeded";
    case StepPhase::kFailed:
      return "failed";
    case StepPhase::kCompensating:
      return "compensating";
    case StepPhase::kCompBackoff:
      return "compensation-backoff";
    case StepPhase::kCompensated:
      return "compensated";
  }
  return "unknown";
}

const char* outcome_name(ReplyOutcome o) {
  switch (o) {
    case ReplyOutcome::kOk:
      return "ok";
    case ReplyOutcome::kRejected:
      return "rejected";
    case ReplyOutcome::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string command_id(const std::string& saga_id, const std::string& step, bool compensation,
                       int attempt) {
  std::string id;
  id.reserve(saga_id.size() + step.size() + 8);
  id.append(saga_id).append("/").append(step).append(compensation ? "/c" : "/a");
  id.append(std::to_string(attempt));
  return id;
}

bool parse_command_id(const std::string& id, CommandIdParts* out) {
  auto last = id.rfind('/');
  if (last == std::string::npos || last == 0 || last + 2 > id.size()) return false;
  auto prev = id.rfind('/', last - 1);
  if (prev == std::string::npos || prev == 0 || prev + 1 == last) return false;
  char kind = id[last + 1];
  if (kind != 'a' && kind != 'c') return false;
  int attempt = 0;
  const char* b = id.data() + last + 2;
  const char* e = id.data() + id.size();
  auto [p, ec] = std::from_chars(b, e, attempt);
  if (ec != std::errc() || p != e || attempt <= 0) return false;
  out->saga_id = id.substr(0, prev);
  out->step = id.substr(prev + 1, last - prev - 1);
  out->compensation = kind == 'c';
  out->attempt = attempt;
  return true;
}

}  // namespace saga
