// The pure saga state machine: apply() folds events, decide() emits them.
#include "saga/state_machine.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "saga/limits.hpp"

namespace saga {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

StepProgress& step_of(SagaState& s, int i) {
  if (i < 0) i = 0;
  if (static_cast<size_t>(i) >= s.steps.size()) s.steps.resize(i + 1);
  return s.steps[i];
}

// Data nested too deep is not merged (the edges refuse it; an older log may still hold it):
// merge_patch and dump() recurse.
std::string merge_context(const std::string& context, const std::string& data) {
  if (data.empty() || data == "{}") return context;
  if (json_depth(data) > kMaxJsonDepth || json_depth(context) > kMaxJsonDepth) return context;
  auto ctx = nlohmann::json::parse(context.empty() ? "{}" : context, nullptr, false);
  auto patch = nlohmann::json::parse(data, nullptr, false);
  if (ctx.is_discarded() || patch.is_discarded() || !ctx.is_object() || !patch.is_object())
    return context;
  ctx.merge_patch(patch);
  return ctx.dump();
}

// Steps that may have left an effect needing compensation.
bool needs_compensation(const StepDef& def, const StepProgress& p) {
  if (!def.compensatable()) return false;
  return p.phase == StepPhase::kSucceeded || (p.phase == StepPhase::kFailed && p.maybe_applied);
}

class Decider {
 public:
  Decider(const Definition& def, Decision& d, TimePoint now) : def_(def), d_(d), now_(now) {}

  void emit(Event e) {
    e.seq = d_.state.seq + 1;
    e.at = now_;
    apply(d_.state, e);
    d_.events.push_back(std::move(e));
  }

  StepProgress& progress(int i) { return step_of(d_.state, i); }

  void dispatch(int i, int attempt, bool comp) {
    const StepDef& sd = def_.steps[i];
    Event e;
    e.type = comp ? EventType::kCompensationDispatched : EventType::kStepDispatched;
    e.step = i;
    e.attempt = attempt;
    e.compensation = comp;
    emit(std::move(e));
    const CommandRef& ref = comp ? *sd.compensation : sd.action;
    Command c;
    c.id = command_id(d_.state.id, sd.name, comp, attempt);
    c.saga_id = d_.state.id;
    c.participant = ref.participant;
    c.type = ref.type;
    c.compensation = comp;
    c.payload = d_.state.context;
    c.trace = d_.state.trace;
    Timer t;
    t.id = c.id + "#t";
    t.saga_id = d_.state.id;
    t.due = now_ + sd.timeout;
    t.kind = TimerKind::kTimeout;
    t.step = i;
    t.attempt = attempt;
    t.compensation = comp;
    d_.commands.push_back(std::move(c));
    d_.timers.push_back(std::move(t));
  }

  void schedule_retry(int i, int attempt, bool comp) {
    const StepDef& sd = def_.steps[i];
    const RetryPolicy& policy = comp ? sd.compensation_retry : sd.retry;
    Duration delay = backoff_delay(policy, attempt, d_.state.seed, i, comp);
    Event e;
    e.type = EventType::kRetryScheduled;
    e.step = i;
    e.attempt = attempt;
    e.compensation = comp;
    e.value = delay.count();
    emit(std::move(e));
    Timer t;
    t.id = command_id(d_.state.id, sd.name, comp, attempt) + "#r";
    t.saga_id = d_.state.id;
    t.due = now_ + delay;
    t.kind = TimerKind::kRetry;
    t.step = i;
    t.attempt = attempt;
    t.compensation = comp;
    d_.timers.push_back(std::move(t));
  }

  // Forward progress: dispatch the pending steps of the first unfinished stage.
  void advance() {
    const int n = static_cast<int>(def_.steps.size());
    int i = 0;
    while (i < n && progress(i).phase == StepPhase::kSucceeded) ++i;
    if (i == n) {
      emit({.type = EventType::kSagaCompleted});
      return;
    }
    const int stage = def_.steps[i].stage;
    for (int j = i; j < n && def_.steps[j].stage == stage; ++j)
      if (progress(j).phase == StepPhase::kPending) dispatch(j, 1, false);
  }

  // Backward recovery: one compensation at a time, in reverse declaration order, once no
  // action is in flight.
  void compensate_next() {
    const int n = static_cast<int>(def_.steps.size());
    for (int i = 0; i < n; ++i) {
      StepPhase ph = progress(i).phase;
      if (ph == StepPhase::kRunning || ph == StepPhase::kCompensating) return;
    }
    for (int i = n - 1; i >= 0; --i) {
      StepProgress& p = progress(i);
      if (p.phase == StepPhase::kCompBackoff) return;
      if (needs_compensation(def_.steps[i], p)) {
        dispatch(i, p.comp_attempt + 1, true);
        return;
      }
    }
    emit({.type = EventType::kSagaCompensated, .detail = d_.state.reason});
  }

  void progress_saga() {
    if (d_.state.status == SagaStatus::kRunning) {
      advance();
    } else if (d_.state.status == SagaStatus::kCompensating) {
      compensate_next();
    }
  }

  void stuck(const std::string& reason, bool compensating) {
    emit({.type = EventType::kSagaStuck, .value = compensating ? 1 : 0, .detail = reason});
  }

  void action_failed(int i, const std::string& reason, bool business, bool timeout) {
    const StepDef& sd = def_.steps[i];
    const StepProgress& p = progress(i);
    const StepKind kind = def_.kind(i);
    const bool failing = d_.state.status == SagaStatus::kCompensating;
    const bool retry =
        !business && !failing && (sd.retry.forever() || p.attempt < sd.retry.max_attempts);
    const int attempt = p.attempt;
    auto failure = [&](bool final) {
      Event e;
      e.type = timeout ? EventType::kStepTimedOut : EventType::kStepFailed;
      e.step = i;
      e.attempt = attempt;
      e.value = (final ? Event::kFinal : 0) | (business ? Event::kRejected : 0);
      e.detail = reason;
      if (final) e.data = "step '" + sd.name + "' failed: " + reason;
      emit(std::move(e));
    };
    if (retry) {
      failure(false);
      schedule_retry(i, attempt + 1, false);
      return;
    }
    if (kind == StepKind::kRetriable) {
      failure(false);
      stuck("retriable step '" + sd.name + "' cannot succeed: " + reason, false);
      return;
    }
    if (kind == StepKind::kPivot && timeout) {
      failure(false);
      stuck("outcome of pivot step '" + sd.name + "' is unknown: its last attempt timed out",
            false);
      return;
    }
    failure(true);
    compensate_next();
  }

  void compensation_failed(int i, const std::string& reason) {
    const StepDef& sd = def_.steps[i];
    const int attempt = progress(i).comp_attempt;
    const RetryPolicy& policy = sd.compensation_retry;
    const bool retry = policy.forever() || attempt < policy.max_attempts;
    emit({.type = EventType::kCompensationFailed,
          .step = i,
          .attempt = attempt,
          .compensation = true,
          .value = retry ? 0 : 1,
          .detail = reason});
    if (retry) {
      schedule_retry(i, attempt + 1, true);
    } else {
      stuck("compensation of step '" + sd.name + "' failed " + std::to_string(attempt) +
                " times: " + reason,
            true);
    }
  }

  void on_reply(const Reply& r) {
    CommandIdParts parts;
    if (!parse_command_id(r.command_id, &parts) || parts.saga_id != d_.state.id) {
      d_.ignored = "reply with a foreign command id";  // the id goes with the log line
      return;
    }
    const int i = def_.find_step(parts.step);
    if (i < 0) {
      d_.ignored = "reply for unknown step '" + parts.step + "'";
      return;
    }
    if (d_.state.status == SagaStatus::kStuck || is_terminal(d_.state.status)) {
      d_.ignored = std::string("reply after the saga became ") + status_name(d_.state.status);
      return;
    }
    const StepProgress& p = progress(i);
    const StepPhase awaited = parts.compensation ? StepPhase::kCompensating : StepPhase::kRunning;
    const int awaited_attempt = parts.compensation ? p.comp_attempt : p.attempt;
    if (p.phase != awaited || parts.attempt != awaited_attempt) {
      d_.ignored = "reply is not awaited (step " + std::string(phase_name(p.phase)) + ", attempt " +
                   std::to_string(awaited_attempt) + ")";
      return;
    }
    d_.cancel_timers.push_back(r.command_id + "#t");
    if (!parts.compensation) {
      if (r.outcome == ReplyOutcome::kOk) {
        emit({.type = EventType::kStepSucceeded,
              .step = i,
              .attempt = parts.attempt,
              .data = r.data});
        progress_saga();
      } else {
        action_failed(i, r.error.empty() ? outcome_name(r.outcome) : r.error,
                      r.outcome == ReplyOutcome::kRejected, false);
      }
    } else if (r.outcome == ReplyOutcome::kOk) {
      emit({.type = EventType::kCompensationSucceeded,
            .step = i,
            .attempt = parts.attempt,
            .compensation = true});
      compensate_next();
    } else {
      compensation_failed(i, r.error.empty() ? outcome_name(r.outcome) : r.error);
    }
  }

  void on_timer(const Timer& t) {
    d_.cancel_timers.push_back(t.id);
    const int n = static_cast<int>(def_.steps.size());
    if (t.step < 0 || t.step >= n || d_.state.status == SagaStatus::kStuck ||
        is_terminal(d_.state.status)) {
      d_.ignored = "obsolete timer " + t.id;
      return;
    }
    const StepProgress& p = progress(t.step);
    const int i = t.step;
    if (t.kind == TimerKind::kTimeout) {
      const std::string why =
          "timed out after " + std::to_string(def_.steps[i].timeout.count()) + "ms" +
          (p.undelivered.empty() ? std::string()
                                 : "; the command could not be sent: " + p.undelivered);
      if (!t.compensation && p.phase == StepPhase::kRunning && p.attempt == t.attempt) {
        action_failed(i, why, false, true);
      } else if (t.compensation && p.phase == StepPhase::kCompensating &&
                 p.comp_attempt == t.attempt) {
        compensation_failed(i, why);
      } else {
        d_.ignored = "obsolete timer " + t.id;
      }
      return;
    }
    if (!t.compensation && p.phase == StepPhase::kBackoff && t.attempt == p.attempt + 1 &&
        d_.state.status == SagaStatus::kRunning) {
      dispatch(i, t.attempt, false);
    } else if (t.compensation && p.phase == StepPhase::kCompBackoff &&
               t.attempt == p.comp_attempt + 1 && d_.state.status == SagaStatus::kCompensating) {
      dispatch(i, t.attempt, true);
    } else {
      d_.ignored = "obsolete timer " + t.id;
    }
  }

  // Recorded once per attempt, so an operator sees why no reply comes.
  void on_send_failed(const Reply& r) {
    CommandIdParts parts;
    const int i = parse_command_id(r.command_id, &parts) && parts.saga_id == d_.state.id
                      ? def_.find_step(parts.step)
                      : -1;
    if (i < 0 || d_.state.status == SagaStatus::kStuck || is_terminal(d_.state.status)) {
      d_.ignored = "send failure of " + r.command_id + " for no awaited command";
      return;
    }
    const StepProgress& p = progress(i);
    const StepPhase awaited = parts.compensation ? StepPhase::kCompensating : StepPhase::kRunning;
    const int attempt = parts.compensation ? p.comp_attempt : p.attempt;
    if (p.phase != awaited || parts.attempt != attempt || !p.undelivered.empty()) {
      d_.ignored = "send failure of " + r.command_id + " already recorded or not awaited";
      return;
    }
    emit({.type = EventType::kCommandNotSent,
          .step = i,
          .attempt = parts.attempt,
          .compensation = parts.compensation,
          .detail = r.error.empty() ? "unknown transport error" : r.error});
  }

  void on_operator(const Input& in) {
    if (d_.state.status != SagaStatus::kStuck) {
      d_.ignored = std::string("saga is ") + status_name(d_.state.status) + ", not stuck";
      return;
    }
    const bool retry = in.kind == Input::Kind::kOperatorRetry;
    emit({.type = EventType::kOperatorIntervened,
          .detail = retry ? "retry" : "abort",
          .data = in.reason});
    if (!retry) return;
    const int n = static_cast<int>(def_.steps.size());
    if (d_.state.status == SagaStatus::kCompensating) {
      for (int i = n - 1; i >= 0; --i) {
        if (progress(i).phase == StepPhase::kCompBackoff) {
          dispatch(i, progress(i).comp_attempt + 1, true);
          return;
        }
      }
      compensate_next();
      return;
    }
    bool any = false;
    for (int i = 0; i < n; ++i) {
      if (progress(i).phase == StepPhase::kFailed) {
        dispatch(i, progress(i).attempt + 1, false);
        any = true;
      }
    }
    if (!any) advance();
  }

 private:
  const Definition& def_;
  Decision& d_;
  TimePoint now_;
};

}  // namespace

void apply(SagaState& s, const Event& e) {
  s.seq = e.seq;
  s.updated_at = e.at;
  switch (e.type) {
    case EventType::kSagaStarted:
      s.definition = e.detail;
      s.version = e.attempt;
      s.input = e.data;
      s.context = e.data;
      s.seed = static_cast<uint64_t>(e.value);
      s.trace = e.trace;
      s.fingerprint = e.fingerprint;
      s.status = SagaStatus::kRunning;
      s.started_at = e.at;
      s.steps.assign(static_cast<size_t>(std::max(0, e.step)), StepProgress{});
      break;
    case EventType::kStepDispatched: {
      StepProgress& p = step_of(s, e.step);
      p.phase = StepPhase::kRunning;
      p.attempt = e.attempt;
      p.undelivered.clear();
      break;
    }
    case EventType::kStepSucceeded:
      step_of(s, e.step).phase = StepPhase::kSucceeded;
      s.context = merge_context(s.context, e.data);
      break;
    case EventType::kStepFailed:
    case EventType::kStepTimedOut: {
      StepProgress& p = step_of(s, e.step);
      p.phase = StepPhase::kFailed;
      p.error = e.detail;
      if (e.type == EventType::kStepTimedOut) p.maybe_applied = true;
      if (e.final()) {
        // Final failure: compensation begins; retries still pending elsewhere are abandoned.
        // The first failure is the saga's reason; a sibling settling later does not replace it.
        if (s.status != SagaStatus::kCompensating) {
          s.failure = e.data.empty() ? e.detail : e.data;
          s.reason = s.failure;
        }
        s.status = SagaStatus::kCompensating;
        for (auto& other : s.steps)
          if (other.phase == StepPhase::kBackoff) other.phase = StepPhase::kFailed;
      }
      break;
    }
    case EventType::kRetryScheduled:
      step_of(s, e.step).phase = e.compensation ? StepPhase::kCompBackoff : StepPhase::kBackoff;
      break;
    case EventType::kCompensationDispatched: {
      StepProgress& p = step_of(s, e.step);
      p.phase = StepPhase::kCompensating;
      p.comp_attempt = e.attempt;
      p.undelivered.clear();
      s.status = SagaStatus::kCompensating;
      break;
    }
    case EventType::kCompensationSucceeded:
      step_of(s, e.step).phase = StepPhase::kCompensated;
      break;
    case EventType::kCompensationFailed: {
      StepProgress& p = step_of(s, e.step);
      p.phase = StepPhase::kCompBackoff;
      p.error = e.detail;
      break;
    }
    case EventType::kSagaCompleted:
      s.status = SagaStatus::kCompleted;
      break;
    case EventType::kSagaCompensated:
      s.status = SagaStatus::kCompensated;
      break;
    case EventType::kSagaStuck:
      s.status = SagaStatus::kStuck;
      s.stuck_compensating = e.value == 1;
      s.reason = e.detail;
      break;
    case EventType::kCommandNotSent:
      step_of(s, e.step).undelivered = e.detail;
      break;
    case EventType::kOperatorIntervened:
      if (e.detail == "abort") {
        s.status = SagaStatus::kAborted;
        s.reason = "aborted by operator: " + e.data;
      } else {
        // Resumed: the stuck reason no longer holds; a compensation resumes for its failure.
        s.status = s.stuck_compensating ? SagaStatus::kCompensating : SagaStatus::kRunning;
        s.reason = s.stuck_compensating ? s.failure : std::string();
      }
      break;
  }
}

SagaState replay(const std::string& saga_id, const std::vector<Event>& events) {
  SagaState s;
  s.id = saga_id;
  for (const Event& e : events) apply(s, e);
  return s;
}

Duration backoff_delay(const RetryPolicy& policy, int attempt, uint64_t seed, int step,
                       bool compensation) {
  const double base_ms = static_cast<double>(policy.initial_backoff.count()) *
                         std::pow(policy.multiplier, std::max(0, attempt - 2));
  const double capped = std::min(base_ms, static_cast<double>(policy.max_backoff.count()));
  const uint64_t r =
      splitmix64(seed ^ splitmix64(static_cast<uint64_t>(step) * 2 + (compensation ? 1 : 0)) ^
                 static_cast<uint64_t>(attempt) * 0x9e3779b97f4a7c15ULL);
  const double frac = static_cast<double>(r >> 11) * 0x1.0p-53;  // [0, 1)
  const double ms = capped * (1.0 - policy.jitter * frac);
  return Duration(std::max<int64_t>(1, static_cast<int64_t>(ms)));
}

Decision start(const Definition& def, const std::string& saga_id, const std::string& input,
               const std::string& trace, uint64_t seed, TimePoint now,
               const std::string& def_fingerprint) {
  Decision d;
  d.state.id = saga_id;
  Decider decider(def, d, now);
  decider.emit({.type = EventType::kSagaStarted,
                .step = static_cast<int>(def.steps.size()),
                .attempt = def.version,
                .value = static_cast<int64_t>(seed),
                .detail = def.name,
                .data = input,
                .trace = trace,
                .fingerprint = def_fingerprint.empty() ? fingerprint(def) : def_fingerprint});
  decider.advance();
  return d;
}

Decision decide(const Definition& def, const SagaState& state, const Input& input, TimePoint now) {
  Decision d;
  d.state = state;
  Decider decider(def, d, now);
  switch (input.kind) {
    case Input::Kind::kReply:
      decider.on_reply(input.reply);
      break;
    case Input::Kind::kTimer:
      decider.on_timer(input.timer);
      break;
    case Input::Kind::kOperatorRetry:
    case Input::Kind::kOperatorAbort:
      decider.on_operator(input);
      break;
    case Input::Kind::kSendFailed:
      decider.on_send_failed(input.reply);
      break;
  }
  return d;
}

}  // namespace saga
