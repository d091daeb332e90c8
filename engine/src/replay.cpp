#include "saga/replay.hpp"

#include "saga/state_machine.hpp"

namespace saga {

namespace {

// A StepFailed recorded before Event::kRejected existed matches its re-run with the bit set.
bool same_value(const Event& a, const Event& b) {
  if (a.value == b.value) return true;
  return a.type == EventType::kStepFailed && !b.rejected() &&
         (a.value & ~Event::kRejected) == b.value;
}

bool same(const Event& a, const Event& b) {
  return a.type == b.type && a.seq == b.seq && a.step == b.step && a.attempt == b.attempt &&
         a.compensation == b.compensation && same_value(a, b) && a.detail == b.detail &&
         a.data == b.data && a.trace == b.trace && a.at == b.at &&
         (b.fingerprint.empty() || a.fingerprint == b.fingerprint);  // b: recorded
}

std::string describe(const Event& e) {
  std::string s = "#" + std::to_string(e.seq) + " " + event_name(e.type);
  if (e.step >= 0) s += " step " + std::to_string(e.step);
  if (e.attempt) s += " attempt " + std::to_string(e.attempt);
  if (e.value) s += " value " + std::to_string(e.value);
  if (!e.detail.empty()) s += " '" + e.detail + "'";
  return s;
}

// The inputs that could have produced `e` as the first event of a decision.
std::vector<Input> candidates(const Definition& def, const std::string& id, const Event& e) {
  std::vector<Input> out;
  if (e.step < 0 && e.type != EventType::kOperatorIntervened) return out;
  const std::string step =
      e.step >= 0 && static_cast<size_t>(e.step) < def.steps.size() ? def.steps[e.step].name : "";
  auto reply = [&](bool comp, ReplyOutcome o) {
    Input in;
    in.kind = Input::Kind::kReply;
    in.reply = Reply{command_id(id, step, comp, e.attempt), o, o == ReplyOutcome::kOk ? e.data : "",
                     o == ReplyOutcome::kOk ? "" : e.detail};
    out.push_back(in);
  };
  auto timer = [&](TimerKind kind, bool comp) {
    Input in;
    in.kind = Input::Kind::kTimer;
    in.timer.kind = kind;
    in.timer.step = e.step;
    in.timer.attempt = e.attempt;
    in.timer.compensation = comp;
    in.timer.saga_id = id;
    in.timer.id =
        command_id(id, step, comp, e.attempt) + (kind == TimerKind::kTimeout ? "#t" : "#r");
    out.push_back(in);
  };
  switch (e.type) {
    case EventType::kStepSucceeded:
      reply(false, ReplyOutcome::kOk);
      break;
    case EventType::kStepFailed:
      reply(false, ReplyOutcome::kFailed);
      reply(false, ReplyOutcome::kRejected);
      break;
    case EventType::kStepTimedOut:
      timer(TimerKind::kTimeout, false);
      break;
    case EventType::kStepDispatched:
      timer(TimerKind::kRetry, false);
      break;
    case EventType::kCompensationDispatched:
      timer(TimerKind::kRetry, true);
      break;
    case EventType::kCompensationSucceeded:
      reply(true, ReplyOutcome::kOk);
      break;
    case EventType::kCompensationFailed:
      timer(TimerKind::kTimeout, true);
      reply(true, ReplyOutcome::kFailed);
      reply(true, ReplyOutcome::kRejected);
      break;
    case EventType::kCommandNotSent: {
      Input in;
      in.kind = Input::Kind::kSendFailed;
      in.reply.command_id = command_id(id, step, e.compensation, e.attempt);
      in.reply.error = e.detail;
      out.push_back(in);
      break;
    }
    case EventType::kOperatorIntervened: {
      Input in;
      in.kind = e.detail == "abort" ? Input::Kind::kOperatorAbort : Input::Kind::kOperatorRetry;
      in.reason = e.data;
      out.push_back(in);
      break;
    }
    default:
      break;
  }
  return out;
}

}  // namespace

SagaState state_at(const std::string& saga_id, const std::vector<Event>& events, size_t upto) {
  SagaState s;
  s.id = saga_id;
  for (size_t i = 0; i < events.size() && i < upto; ++i) apply(s, events[i]);
  return s;
}

Result<ReplayReport> check_determinism(const Definition& def, const std::string& saga_id,
                                       const std::vector<Event>& log) {
  if (log.empty()) return Status::NotFound("saga '" + saga_id + "' has no events");
  const Event& first = log.front();
  if (first.type != EventType::kSagaStarted)
    return Status::Corruption("the log of '" + saga_id + "' does not begin with SagaStarted");
  if (first.detail != def.name || first.attempt != def.version)
    return Status::InvalidArgument("saga '" + saga_id + "' ran " + first.detail + " v" +
                                   std::to_string(first.attempt) + ", not " + def.name + " v" +
                                   std::to_string(def.version));
  if (!first.fingerprint.empty() && first.fingerprint != fingerprint(def))
    return Status::InvalidArgument(
        "saga '" + saga_id + "' was recorded with another definition of " + def.name + " v" +
        std::to_string(def.version) + " (fingerprint " + first.fingerprint + "; this one is " +
        fingerprint(def) + "): the definition changed under the same version");
  auto matches = [&](const Decision& d, size_t pos) {
    if (d.events.empty() || pos + d.events.size() > log.size()) return false;
    for (size_t i = 0; i < d.events.size(); ++i)
      if (!same(d.events[i], log[pos + i])) return false;
    return true;
  };
  // Names the first recorded event the re-run decision does not reproduce.
  auto diverged = [&](size_t pos, const Decision& d) -> Status {
    size_t i = 0;
    while (i < d.events.size() && pos + i < log.size() && same(d.events[i], log[pos + i])) ++i;
    std::string msg = "saga '" + saga_id + "' diverges at event ";
    msg += pos + i < log.size() ? describe(log[pos + i])
                                : "#" + std::to_string(pos + i + 1) + " (end of log)";
    if (i < d.events.size()) {
      msg += "; the state machine decides " + describe(d.events[i]) + " instead";
    } else {
      msg += "; no input makes the state machine record it";
    }
    return Status::FailedPrecondition(msg);
  };

  Decision d =
      start(def, saga_id, first.data, first.trace, static_cast<uint64_t>(first.value), first.at);
  if (!matches(d, 0)) return diverged(0, d);
  size_t pos = d.events.size();
  SagaState state = d.state;
  while (pos < log.size()) {
    const Event& e = log[pos];
    Decision best;
    bool found = false;
    for (const Input& in : candidates(def, saga_id, e)) {
      Decision attempt = decide(def, state, in, e.at);
      if (matches(attempt, pos)) {
        best = std::move(attempt);
        found = true;
        break;
      }
      if (best.events.empty()) best = std::move(attempt);
    }
    if (!found) return diverged(pos, best);
    pos += best.events.size();
    state = std::move(best.state);
  }
  return ReplayReport{pos, state};
}

}  // namespace saga
