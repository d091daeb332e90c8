// Bounds on everything that comes from outside the engine (start requests, replies, commands,
// recorded logs): JSON nesting, field sizes, UTF-8 and the W3C traceparent. The rule for bytes
// that are not UTF-8: ids and JSON are refused at the edge; free text (error messages) is kept
// with each invalid sequence replaced by U+FFFD, and cut to size.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "saga/status.hpp"

namespace saga {

constexpr size_t kMaxJsonDepth = 64;     // nesting of objects and arrays
constexpr size_t kMaxIdBytes = 256;      // saga ids, command ids, types, channels
constexpr size_t kMaxErrorBytes = 1024;  // error texts are cut to this

bool is_valid_utf8(std::string_view text);
// UTF-8 with each invalid sequence replaced by U+FFFD, cut on a character boundary to at most
// max_bytes, with a note of the original size when cut.
std::string bounded_text(std::string_view text, size_t max_bytes = kMaxErrorBytes);
// The deepest nesting of objects and arrays in a JSON text (strings skipped); stops counting
// just past `limit`, so that deep input costs no more than shallow input. No recursion.
size_t json_depth(std::string_view text, size_t limit = kMaxJsonDepth);
// Ok when `text` is a JSON object nested at most max_depth deep; `what` names it in the error.
Status check_json_object(std::string_view text, std::string_view what,
                         size_t max_depth = kMaxJsonDepth);
// Non-empty, at most kMaxIdBytes, UTF-8, no control characters.
Status check_id(std::string_view id, std::string_view what);
// W3C trace context: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", lowercase,
// ids not all zero. Empty is allowed (no trace).
Status check_traceparent(std::string_view traceparent);
// The traceparent a command carries: the saga's trace id and flags with a span id of its own,
// derived from the command id (a re-sent command keeps its span). Empty without a trace.
std::string child_traceparent(std::string_view saga_traceparent, std::string_view command_id);

}  // namespace saga
