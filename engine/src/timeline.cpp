#include "saga/timeline.hpp"

#include <cstdio>
#include <ctime>

#include "saga/state_machine.hpp"

namespace saga {

namespace {

std::string clock_time(TimePoint t) {
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

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

}  // namespace

std::string format_timeline(const std::string& saga_id, const std::vector<Event>& events,
                            const Definition* def) {
  if (events.empty()) return "saga " + saga_id + ": no events\n";
  const Event& first = events.front();
  std::string out = "saga " + saga_id + "  " + first.detail + " v" + std::to_string(first.attempt) +
                    "  started " + clock_time(first.at) + "\n  input " + first.data + "\n";
  auto step_name = [&](int i) {
    if (def && i >= 0 && static_cast<size_t>(i) < def->steps.size()) return def->steps[i].name;
    return "step#" + std::to_string(i);
  };
  auto command = [&](int i, bool comp) -> std::string {
    if (!def || i < 0 || static_cast<size_t>(i) >= def->steps.size()) return "";
    const StepDef& s = def->steps[i];
    return comp ? (s.compensation ? s.compensation->to_string() : "") : s.action.to_string();
  };
  for (const Event& e : events) {
    std::string what;
    switch (e.type) {
      case EventType::kSagaStarted:
        continue;
      case EventType::kStepDispatched:
        what = "-> " + command(e.step, false) + "  (attempt " + std::to_string(e.attempt) + ")";
        break;
      case EventType::kStepSucceeded:
        what = "<- ok" + (e.data.empty() || e.data == "{}" ? "" : "  " + e.data);
        break;
      case EventType::kStepFailed:
        what = std::string("<- failed: ") + e.detail + (e.value ? "  (final)" : "");
        break;
      case EventType::kStepTimedOut:
        what = "!! " + (e.detail.empty() ? std::string("timed out") : e.detail) +
               (e.value ? "  (final)" : "");
        break;
      case EventType::kRetryScheduled:
        what = std::string(e.compensation ? "   compensation" : "   retry") + " attempt " +
               std::to_string(e.attempt) + " in " + std::to_string(e.value) + "ms";
        break;
      case EventType::kCompensationDispatched:
        what = "<< compensate: " + command(e.step, true) + "  (attempt " +
               std::to_string(e.attempt) + ")";
        break;
      case EventType::kCompensationSucceeded:
        what = "<- compensated";
        break;
      case EventType::kCompensationFailed:
        what = "<- compensation failed: " + e.detail + (e.value ? "  (limit reached)" : "");
        break;
      case EventType::kSagaCompleted:
        what = "== COMPLETED";
        break;
      case EventType::kSagaCompensated:
        what = "== COMPENSATED: " + e.detail;
        break;
      case EventType::kSagaStuck:
        what = "== STUCK: " + e.detail;
        break;
      case EventType::kCommandNotSent:
        what = "!! could not be sent: " + e.detail;
        break;
      case EventType::kOperatorIntervened:
        what = "   operator " + e.detail + (e.data.empty() ? "" : ": " + e.data);
        break;
    }
    const int64_t rel = to_ms(e.at) - to_ms(first.at);
    std::string line = "  " + pad("+" + std::to_string(rel) + "ms", 9) +
                       pad(e.step >= 0 ? step_name(e.step) : "", 20) + what;
    out += line + "\n";
  }
  return out;
}

}  // namespace saga
