// JSON views of a saga log shared by sagactl and sagad: one event (named from its definition),
// one saga summary, and reply data kept as JSON when it is JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "saga/definition.hpp"
#include "saga/engine.hpp"
#include "saga/event.hpp"
#include "saga/event_store.hpp"

namespace saga::apps {

// `text` parsed when it is JSON (reply data, inputs, contexts), else kept as a string; null
// when empty.
nlohmann::json data_value(const std::string& text);

// One event with its step name, command and command id when `def` (the definition the saga
// ran) is given.
nlohmann::json event_json(const std::string& saga_id, const Event& e, const Definition* def);

nlohmann::json summary_json(const SagaSummary& s);

// How a saga ended, as sagad answers a start and publishes it: id, type, status, reason, context.
nlohmann::json outcome_json(const SagaOutcome& o);

// sagad's bearer token: the file's content without trailing whitespace when `file` is given
// (InvalidArgument when it cannot be read or is empty), else SAGAD_TOKEN, else empty.
Result<std::string> read_token(const std::string& file);

// A saga id as one path segment of sagad's API (/sagas/{id}): all but unreserved characters
// %-escaped.
std::string path_segment(std::string_view s);

}  // namespace saga::apps
