// The JSON envelope of docs/wire-format.md.
#include <nlohmann/json.hpp>
#include <tuple>

#include "saga/limits.hpp"
#include "saga/transport.hpp"

namespace saga {

using nlohmann::json;

std::string encode_json(const Message& m) {
  json j;
  j["v"] = 1;
  j["kind"] = m.kind == Message::Kind::kCommand ? "command" : "reply";
  j["type"] = m.type;
  j["saga_id"] = m.saga_id;
  j["command_id"] = m.command_id;
  if (!m.reply_to.empty()) j["reply_to"] = m.reply_to;
  j["compensation"] = m.compensation;
  if (m.kind == Message::Kind::kReply) {
    j["outcome"] = outcome_name(m.outcome);
    if (!m.error.empty()) j["error"] = m.error;
  }
  if (!m.traceparent.empty()) j["traceparent"] = m.traceparent;
  // A payload nested too deep (only an older log can hold one) travels as a string: dump()
  // recurses. Bytes that are not UTF-8 are replaced, never thrown about.
  json payload = json_depth(m.payload) > kMaxJsonDepth
                     ? json()
                     : json::parse(m.payload.empty() ? "{}" : m.payload, nullptr, false);
  j["payload"] = payload.is_discarded() || payload.is_null() ? json(m.payload) : payload;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Message> decode_json(const std::string& text) {
  if (json_depth(text) > kMaxJsonDepth)
    return Status::InvalidArgument("message is nested deeper than " +
                                   std::to_string(kMaxJsonDepth) + " levels");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument("message is not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("message must be a JSON object");
  auto str = [&](const char* key, bool required, std::string* out) -> Status {
    auto it = j.find(key);
    if (it == j.end()) {
      return required ? Status::InvalidArgument(std::string("message lacks field '") + key + "'")
                      : Status::Ok();
    }
    if (!it->is_string())
      return Status::InvalidArgument(std::string("field '") + key + "' must be a string");
    *out = it->get<std::string>();
    return Status::Ok();
  };
  Message m;
  std::string kind, outcome;
  for (Status s : {str("kind", true, &kind), str("type", true, &m.type),
                   str("saga_id", true, &m.saga_id), str("command_id", true, &m.command_id),
                   str("reply_to", false, &m.reply_to), str("error", false, &m.error),
                   str("traceparent", false, &m.traceparent), str("outcome", false, &outcome)}) {
    if (!s.ok()) return s;
  }
  for (auto [field, value, max] : {std::tuple{"type", &m.type, kMaxIdBytes},
                                   {"saga_id", &m.saga_id, kMaxIdBytes},
                                   {"reply_to", &m.reply_to, kMaxIdBytes},
                                   {"traceparent", &m.traceparent, kMaxIdBytes},
                                   {"command_id", &m.command_id, 4 * kMaxIdBytes}}) {
    if (value->size() > max)
      return Status::InvalidArgument(std::string("field '") + field + "' is longer than " +
                                     std::to_string(max) + " bytes");
  }
  if (m.error.size() > kMaxErrorBytes) m.error = bounded_text(m.error);
  if (kind == "command") {
    m.kind = Message::Kind::kCommand;
  } else if (kind == "reply") {
    m.kind = Message::Kind::kReply;
  } else {
    return Status::InvalidArgument("field 'kind' must be \"command\" or \"reply\"");
  }
  if (m.kind == Message::Kind::kReply) {
    if (outcome.empty() || outcome == "ok") {
      m.outcome = ReplyOutcome::kOk;
    } else if (outcome == "rejected") {
      m.outcome = ReplyOutcome::kRejected;
    } else if (outcome == "failed") {
      m.outcome = ReplyOutcome::kFailed;
    } else {
      return Status::InvalidArgument("field 'outcome' must be ok, rejected or failed");
    }
  }
  if (auto it = j.find("compensation"); it != j.end()) {
    if (!it->is_boolean()) return Status::InvalidArgument("field 'compensation' must be a boolean");
    m.compensation = it->get<bool>();
  }
  if (auto it = j.find("payload"); it != j.end()) {
    if (!it->is_object()) return Status::InvalidArgument("field 'payload' must be a JSON object");
    m.payload = it->dump();
  } else {
    m.payload = "{}";
  }
  return m;
}

}  // namespace saga
