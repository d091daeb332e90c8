#include "saga/timeline.hpp"

#include <cstdio>
#include <ctime>
#include <map>

#include "saga/replay.hpp"

namespace saga {

namespace {

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

struct Paint {
  bool on;
  std::string operator()(const char* code, const std::string& text) const {
    return on ? std::string("\x1b[") + code + "m" + text + "\x1b[0m" : text;
  }
};
constexpr const char* kGreen = "32";
constexpr const char* kRed = "31";
constexpr const char* kYellow = "33";
constexpr const char* kBold = "1";
constexpr const char* kDim = "2";

// How a StepFailed reads: a rejection, a failure the saga compensates after, or one retried.
std::string failure_word(const Event& e) {
  return e.rejected() ? "rejected" : e.final() ? "failed for good" : "failed";
}
const char* failure_colour(const Event& e) {
  return e.final() || e.rejected() ? kRed : kYellow;
}

std::string ms_text(int64_t ms) {
  if (ms < 10'000) return std::to_string(ms) + " ms";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000);
  return buf;
}

// A step's name from its definition, or its number when there is none.
std::string step_name_of(const Definition* def, int i) {
  if (def && i >= 0 && static_cast<size_t>(i) < def->steps.size()) return def->steps[i].name;
  return "step#" + std::to_string(i);
}

// The step's command (or compensation), empty when unknown.
std::string command_of(const Definition* def, int i, bool comp) {
  if (!def || i < 0 || static_cast<size_t>(i) >= def->steps.size()) return "";
  const StepDef& s = def->steps[i];
  return comp ? (s.compensation ? s.compensation->to_string() : "") : s.action.to_string();
}

}  // namespace

std::string format_time(TimePoint t) {
  const int64_t ms = to_ms(t);
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string format_timeline(const std::string& saga_id, const std::vector<Event>& events,
                            const Definition* def, const TimelineOptions& options) {
  if (events.empty()) return "saga " + saga_id + ": no events\n";
  const Paint paint{options.colour};
  const Event& first = events.front();
  const SagaState end = state_at(saga_id, events, events.size());
  const char* status_colour =
      end.status == SagaStatus::kCompleted                                     ? kGreen
      : end.status == SagaStatus::kCompensated                                 ? kYellow
      : end.status == SagaStatus::kStuck || end.status == SagaStatus::kAborted ? kRed
                                                                               : kBold;
  const bool header = options.first_event == 0;
  std::string out;
  if (header) {
    out = paint(kBold, "saga " + saga_id) + "  " + first.detail + " v" +
          std::to_string(first.attempt) + "  " + paint(status_colour, status_name(end.status)) +
          (end.reason.empty() ? "" : " (" + end.reason + ")") + "\n";
    out += "  started " + format_time(first.at) + "  input " + first.data + "\n";
    if (!first.trace.empty()) out += "  trace " + first.trace + "\n";
  }

  auto step_name = [def](int i) { return step_name_of(def, i); };
  auto command = [def](int i, bool comp) { return command_of(def, i, comp); };
  auto id_of = [&](const Event& e) {
    return def ? "  [" + command_id(saga_id, step_name(e.step), e.compensation, e.attempt) + "]"
               : std::string();
  };
  // When each attempt (step, compensation, attempt) was sent: durations, and what is pending.
  std::map<std::tuple<int, bool, int>, TimePoint> sent;
  std::map<std::pair<int, bool>, TimePoint> retry_due;
  auto took = [&](const Event& e, int attempt) {
    auto it = sent.find({e.step, e.compensation, attempt});
    return it == sent.end() ? std::string() : " in " + ms_text(to_ms(e.at) - to_ms(it->second));
  };
  std::map<int, int> attempt_of;  // the step's current action attempt (replies carry none)
  std::map<int, int> comp_attempt_of;

  if (header)
    out +=
        paint(kDim, "  #   time                      since     step                event") + "\n";
  for (size_t index = 0; index < events.size(); ++index) {
    const Event& e = events[index];
    std::string what;
    const bool comp = e.compensation;
    switch (e.type) {
      case EventType::kSagaStarted:
        what = "started";
        break;
      case EventType::kStepDispatched:
        attempt_of[e.step] = e.attempt;
        sent[{e.step, false, e.attempt}] = e.at;
        what = "-> " + command(e.step, false) + " attempt " + std::to_string(e.attempt) + id_of(e);
        break;
      case EventType::kStepSucceeded:
        what = paint(kGreen, "<- ok") + took(e, attempt_of[e.step]) +
               (e.data.empty() || e.data == "{}" ? "" : "  adds " + e.data);
        break;
      case EventType::kStepFailed:
        what = paint(failure_colour(e), std::string("<- ") + failure_word(e)) +
               took(e, attempt_of[e.step]) + ": " + e.detail;
        break;
      case EventType::kStepTimedOut:
        what = paint(kYellow, "!! timed out") + (e.value ? " (final, may have been applied)" : "") +
               (e.detail.empty() ? "" : ": " + e.detail);
        break;
      case EventType::kRetryScheduled:
        retry_due[{e.step, comp}] = from_ms(to_ms(e.at) + e.value);
        what = std::string(comp ? "   compensation" : "   retry") + " attempt " +
               std::to_string(e.attempt) + " in " + ms_text(e.value);
        break;
      case EventType::kCompensationDispatched:
        comp_attempt_of[e.step] = e.attempt;
        sent[{e.step, true, e.attempt}] = e.at;
        what = paint(kYellow, "<< compensate: ") + command(e.step, true) + " attempt " +
               std::to_string(e.attempt) + id_of(e);
        break;
      case EventType::kCompensationSucceeded:
        what = paint(kGreen, "<- compensated") + took(e, comp_attempt_of[e.step]);
        break;
      case EventType::kCompensationFailed:
        what = paint(kRed, "<- compensation failed") + took(e, comp_attempt_of[e.step]) + ": " +
               e.detail + (e.value ? "  (limit reached)" : "");
        break;
      case EventType::kSagaCompleted:
        what = paint(kGreen, "== COMPLETED");
        break;
      case EventType::kSagaCompensated:
        what = paint(kYellow, "== COMPENSATED: ") + e.detail;
        break;
      case EventType::kSagaStuck:
        what = paint(kRed, "== STUCK: ") + e.detail;
        break;
      case EventType::kCommandNotSent:
        what = paint(kRed, "!! could not be sent: ") + e.detail;
        break;
      case EventType::kOperatorIntervened:
        what = paint(kBold, "operator " + e.detail) + (e.data.empty() ? "" : ": " + e.data);
        break;
    }
    if (index < options.first_event) continue;
    const int64_t rel = to_ms(e.at) - to_ms(first.at);
    out += "  " + pad(std::to_string(e.seq), 4) + pad(format_time(e.at), 26) +
           pad("+" + std::to_string(rel) + "ms", 10) +
           pad(e.step >= 0 && e.type != EventType::kSagaStarted ? step_name(e.step) : "", 20) +
           what + "\n";
  }

  // What it waits for now.
  if (is_terminal(end.status)) {
    out += "  ended " + format_time(end.updated_at) + " after " +
           ms_text(to_ms(end.updated_at) - to_ms(first.at)) + "\n";
    return out;
  }
  if (end.status == SagaStatus::kStuck) {
    out += paint(kRed, "  now: stuck") + "; waits for an operator: retry it (sagactl retry " +
           saga_id + ") or abort it (sagactl abort " + saga_id + " --reason TEXT)\n";
    return out;
  }
  for (size_t i = 0; i < end.steps.size(); ++i) {
    const StepProgress& p = end.steps[i];
    const int step = static_cast<int>(i);
    const bool comp = p.phase == StepPhase::kCompensating || p.phase == StepPhase::kCompBackoff;
    const int attempt = comp ? p.comp_attempt : p.attempt;
    if (p.phase == StepPhase::kRunning || p.phase == StepPhase::kCompensating) {
      std::string line = "  now: waits for the reply to " + command(step, comp) + " attempt " +
                         std::to_string(attempt) + " (" + step_name(step) + ")";
      if (auto it = sent.find({step, comp, attempt}); it != sent.end()) {
        line += ", sent " + format_time(it->second);
        if (def && i < def->steps.size())
          line += ", times out at " +
                  format_time(from_ms(to_ms(it->second) + def->steps[i].timeout.count()));
      }
      if (!p.undelivered.empty()) line += "; could not be sent yet: " + p.undelivered;
      out += line + "\n";
    } else if (p.phase == StepPhase::kBackoff || p.phase == StepPhase::kCompBackoff) {
      std::string line = std::string("  now: ") + (comp ? "compensation" : "retry") + " of " +
                         step_name(step) + " (attempt " + std::to_string(attempt + 1) + ")";
      if (auto it = retry_due.find({step, comp}); it != retry_due.end())
        line += " due at " + format_time(it->second);
      out += line + "\n";
    }
  }
  return out;
}

std::string format_path(const std::string& saga_id, const std::vector<Event>& events,
                        const Definition* def, const TimelineOptions& options) {
  if (events.empty()) return "saga " + saga_id + ": no events\n";
  const Paint paint{options.colour};
  const SagaState end = state_at(saga_id, events, events.size());
  auto step_name = [def](int i) { return step_name_of(def, i); };
  auto command = [def](int i, bool comp) { return command_of(def, i, comp); };
  // One leg per step and direction, in the order first sent.
  struct Leg {
    int step;
    bool comp;
    int attempts = 0;
    TimePoint sent{};
    std::string result;
    const char* colour = kBold;
    int64_t took = -1;
  };
  std::vector<Leg> legs;
  auto leg = [&](int step, bool comp) -> Leg& {
    for (Leg& l : legs)
      if (l.step == step && l.comp == comp) return l;
    return legs.emplace_back(Leg{step, comp});
  };
  auto ended = [&](Leg& l, const Event& e, const char* colour, std::string result) {
    l.result = std::move(result);
    l.colour = colour;
    l.took = to_ms(e.at) - to_ms(l.sent);
  };
  for (const Event& e : events) {
    if (e.step < 0 || e.type == EventType::kSagaStarted) continue;
    switch (e.type) {
      case EventType::kStepDispatched:
      case EventType::kCompensationDispatched: {
        Leg& l = leg(e.step, e.compensation);
        l.attempts = std::max(l.attempts, e.attempt);
        l.sent = e.at;
        l.result = "sent";
        l.colour = kBold;
        l.took = -1;
        break;
      }
      case EventType::kStepSucceeded:
        ended(leg(e.step, false), e, kGreen, "ok");
        break;
      case EventType::kStepFailed:
        ended(leg(e.step, false), e, failure_colour(e), failure_word(e) + (": " + e.detail));
        break;
      case EventType::kStepTimedOut:
        ended(leg(e.step, e.compensation), e, kYellow,
              std::string("timed out") + (e.value ? " for good" : "") + ", outcome unknown");
        break;
      case EventType::kCompensationSucceeded:
        ended(leg(e.step, true), e, kYellow, "compensated");
        break;
      case EventType::kCompensationFailed:
        ended(leg(e.step, true), e, kRed, "compensation failed: " + e.detail);
        break;
      case EventType::kCommandNotSent:
        leg(e.step, e.compensation).result = "could not be sent: " + e.detail;
        break;
      default:
        break;
    }
  }
  std::string out = paint(kBold, "saga " + saga_id) + "  " + events.front().detail + " v" +
                    std::to_string(events.front().attempt) + "\n  start\n";
  size_t width = 0, cmd_width = 0;
  for (const Leg& l : legs) {
    width = std::max(width, step_name(l.step).size());
    cmd_width = std::max(cmd_width, command(l.step, l.comp).size());
  }
  for (const Leg& l : legs) {
    std::string tail = std::to_string(l.attempts) + (l.attempts == 1 ? " attempt" : " attempts");
    if (l.took >= 0) tail += ", last " + ms_text(l.took);
    out += std::string(l.comp ? "  <- " : "  -> ") + pad(step_name(l.step), width + 2) +
           pad(command(l.step, l.comp), cmd_width + 2) + paint(l.colour, l.result) + "  (" + tail +
           ")\n";
  }
  const char* colour = end.status == SagaStatus::kCompleted                          ? kGreen
                       : end.status == SagaStatus::kCompensated                      ? kYellow
                       : is_terminal(end.status) || end.status == SagaStatus::kStuck ? kRed
                                                                                     : kBold;
  out += "  == " + paint(colour, status_name(end.status)) +
         (end.reason.empty() ? "" : ": " + end.reason) + "\n";
  if (def && (is_terminal(end.status) || end.status == SagaStatus::kStuck)) {
    std::string unreached;
    for (size_t i = 0; i < def->steps.size(); ++i) {
      bool ran = false;
      for (const Leg& l : legs) ran = ran || (l.step == static_cast<int>(i) && !l.comp);
      if (!ran) unreached += (unreached.empty() ? "" : ", ") + def->steps[i].name;
    }
    if (!unreached.empty()) out += "  not reached: " + unreached + "\n";
  }
  return out;
}

}  // namespace saga
