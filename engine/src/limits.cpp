#include "saga/limits.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace saga {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one (overlong forms,
// surrogates and code points past U+10FFFF are invalid).
size_t utf8_length(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n;
  unsigned cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool all_zero(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string bounded_text(std::string_view text, size_t max_bytes) {
  const std::string note = " ... (cut from " + std::to_string(text.size()) + " bytes)";
  const size_t budget =
      text.size() > max_bytes && max_bytes > note.size() ? max_bytes - note.size() : max_bytes;
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  bool cut = false;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    const std::string_view piece = n ? text.substr(i, n) : std::string_view("\xEF\xBF\xBD");
    if (out.size() + piece.size() > budget) {
      cut = true;
      break;
    }
    out.append(piece);
    i += n ? n : 1;
  }
  if (cut) out += note;
  return out;
}

size_t json_depth(std::string_view text, size_t limit) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

Status check_json_object(std::string_view text, std::string_view what, size_t max_depth) {
  if (json_depth(text, max_depth) > max_depth)
    return Status::InvalidArgument(std::string(what) + " is nested deeper than " +
                                   std::to_string(max_depth) + " levels");
  // Validated without building it: accept() runs the parser's lexer and grammar alone.
  if (!nlohmann::json::accept(text.begin(), text.end()))
    return Status::InvalidArgument(std::string(what) + " is not valid JSON (or not UTF-8)");
  if (text.starts_with("\xEF\xBB\xBF"))
    text.remove_prefix(3);  // a UTF-8 BOM, which the parser skips
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || text[first] != '{')
    return Status::InvalidArgument(std::string(what) + " is not a JSON object");
  return Status::Ok();
}

Status check_id(std::string_view id, std::string_view what) {
  if (id.empty()) return Status::InvalidArgument(std::string(what) + " is empty");
  if (id.size() > kMaxIdBytes)
    return Status::InvalidArgument(std::string(what) + " is " + std::to_string(id.size()) +
                                   " bytes, more than " + std::to_string(kMaxIdBytes));
  if (!is_valid_utf8(id)) return Status::InvalidArgument(std::string(what) + " is not UTF-8");
  for (char c : id)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return Status::InvalidArgument(std::string(what) + " contains a control character");
  return Status::Ok();
}

Status check_traceparent(std::string_view tp) {
  if (tp.empty()) return Status::Ok();
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(
        "traceparent " +
        (tp.size() <= 64 ? "'" + bounded_text(tp, 64) + "'"
                         : "of " + std::to_string(tp.size()) + " bytes") +
        " is not W3C trace context (00-<32 hex>-<16 hex>-<2 hex>): " + why);
  };
  if (tp.size() != 55) return bad("wrong length");
  if (tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return bad("misplaced '-'");
  const auto version = tp.substr(0, 2), trace = tp.substr(3, 32), parent = tp.substr(36, 16),
             flags = tp.substr(53, 2);
  if (!is_lower_hex(version) || !is_lower_hex(trace) || !is_lower_hex(parent) ||
      !is_lower_hex(flags))
    return bad("not lowercase hex");
  if (version != "00") return bad("version " + std::string(version) + " is not supported");
  if (all_zero(trace) || all_zero(parent)) return bad("all-zero id");
  return Status::Ok();
}

std::string child_traceparent(std::string_view parent, std::string_view command_id) {
  if (parent.size() != 55 || !check_traceparent(parent).ok()) return std::string(parent);
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a of the command id: stable across re-sends
  for (unsigned char c : command_id) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  if (h == 0) h = 1;  // an all-zero span id is invalid
  char span[17];
  std::snprintf(span, sizeof span, "%016llx", static_cast<unsigned long long>(h));
  std::string out(parent);
  out.replace(36, 16, span);  // "00-" + 32 hex trace id + "-" = 36 characters
  return out;
}

}  // namespace saga
