#include "saga_json.hpp"

#include "saga/timeline.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace saga::apps {

Result<std::string> read_token(const std::string& file) {
  if (file.empty()) {
    const char* env = std::getenv("SAGAD_TOKEN");
    return std::string(env ? env : "");
  }
  std::ifstream in(file);
  if (!in) return Status::InvalidArgument("token file " + file + " cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.empty()) return Status::InvalidArgument("token file " + file + " is empty");
  return t;
}

using nlohmann::json;

json data_value(const std::string& text) {
  if (text.empty()) return nullptr;
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

json event_json(const std::string& saga_id, const Event& e, const Definition* def) {
  json j{{"seq", e.seq},
         {"at", format_time(e.at)},
         {"at_ms", to_ms(e.at)},
         {"type", event_name(e.type)}};
  if (e.type == EventType::kSagaStarted) {  // detail: type, attempt: version, step: steps
    j["saga_type"] = e.detail;
    j["version"] = e.attempt;
    j["steps"] = e.step;
    j["input"] = data_value(e.data);
    if (!e.trace.empty()) j["trace"] = e.trace;
    j["fingerprint"] = e.fingerprint;
    return j;
  }
  if (e.step >= 0) {
    j["step"] = e.step;
    if (def && static_cast<size_t>(e.step) < def->steps.size()) {
      const StepDef& s = def->steps[e.step];
      j["step_name"] = s.name;
      const bool comp = e.compensation;
      if (!comp || s.compensation)
        j["command"] = comp ? s.compensation->to_string() : s.action.to_string();
      if (e.attempt > 0) j["command_id"] = command_id(saga_id, s.name, comp, e.attempt);
    }
  }
  if (e.attempt) j["attempt"] = e.attempt;
  if (e.compensation) j["compensation"] = true;
  if (e.value) j["value"] = e.value;
  if (const char* outcome = event_outcome(e)) j["outcome"] = outcome;
  if ((e.type == EventType::kStepFailed || e.type == EventType::kStepTimedOut) && e.final())
    j["final"] = true;
  if (!e.detail.empty()) j["detail"] = e.detail;
  if (!e.data.empty()) j["data"] = data_value(e.data);
  if (!e.trace.empty()) j["trace"] = e.trace;
  return j;
}

json summary_json(const SagaSummary& s) {
  return {{"id", s.id},
          {"type", s.definition},
          {"version", s.version},
          {"status", status_name(s.status)},
          {"started", format_time(s.started_at)},
          {"updated", format_time(s.updated_at)},
          {"duration_ms", to_ms(s.updated_at) - to_ms(s.started_at)},
          {"events", s.events},
          {"reason", s.reason}};
}

json outcome_json(const SagaOutcome& o) {
  return {{"id", o.saga_id},
          {"type", o.definition},
          {"status", status_name(o.status)},
          {"reason", o.reason},
          {"context", data_value(o.context)}};
}

std::string path_segment(std::string_view s) {
  if (s == "." || s == "..") return s == "." ? "%2E" : "%2E%2E";  // clients drop dot segments
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace saga::apps
