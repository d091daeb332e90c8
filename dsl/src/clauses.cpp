// The parser's values: whole numbers, fractions, durations, commands and retry policies.
#include <charconv>
#include <cmath>

#include "parser_impl.hpp"

namespace saga::dsl::internal {

namespace {

// Milliseconds per duration unit, 0 for an unknown unit.
int64_t unit_ms(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60'000;
  if (unit == "h") return 3'600'000;
  return 0;
}

constexpr std::size_t kMaxDigits = 9;       // any count or duration that validate() accepts fits
constexpr std::size_t kMaxRealChars = 400;  // any double in [0, 100], printed in full

}  // namespace

std::optional<int64_t> Parser::parse_int(const std::string& what) {
  const Token& t = peek();
  if (t.kind != Tok::kNumber || !t.unit.empty()) {
    expected(t, what);
    if (t.kind == Tok::kNumber) next();
    return std::nullopt;
  }
  next();
  if (t.text.find('.') != std::string_view::npos) {
    error(t.loc, quote(t.text) + " is not a whole number");
    return std::nullopt;
  }
  if (t.text.size() > kMaxDigits) {
    error(t.loc, quote(t.text) + " is too large");
    return std::nullopt;
  }
  int64_t v = 0;
  std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
  return v;
}

std::optional<double> Parser::parse_real(const std::string& what) {
  const Token& t = peek();
  if (t.kind != Tok::kNumber || !t.unit.empty()) {
    expected(t, what);
    if (t.kind == Tok::kNumber) next();
    return std::nullopt;
  }
  next();
  if (t.text.size() > kMaxRealChars) {
    error(t.loc, quote(t.text) + " has too many digits");
    return std::nullopt;
  }
  double v = 0;
  std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
  return v;
}

std::optional<Duration> Parser::parse_duration(const std::string& what) {
  const Token& t = peek();
  if (t.kind != Tok::kNumber) {
    expected(t, what);
    return std::nullopt;
  }
  next();
  const std::string_view digits = t.text.substr(0, t.text.size() - t.unit.size());
  const int64_t per = unit_ms(t.unit);
  if (t.unit.empty()) {
    error(t.loc, "duration " + quote(digits) + " needs a unit: ms, s, m or h");
    return std::nullopt;
  }
  if (per == 0) {
    if (std::any_of(t.unit.begin(), t.unit.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      error(t.loc, quote(t.text) + " has more than one unit; use one, e.g. '90s' for '1m30s'");
    } else {
      error(t.loc,
            "unknown unit " + quote(t.unit) + " in " + quote(t.text) + "; use ms, s, m or h");
    }
    return std::nullopt;
  }
  if (digits.find('.') != std::string_view::npos) {
    std::string msg = quote(t.text) + " is not a whole number of " + std::string(t.unit);
    double v = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), v);
    const double ms = v * static_cast<double>(per);
    if (digits.size() <= kMaxDigits && ms == std::floor(ms))
      msg += "; write '" + std::to_string(static_cast<int64_t>(ms)) + "ms'";
    error(t.loc, msg);
    return std::nullopt;
  }
  if (digits.size() > kMaxDigits) {
    error(t.loc, quote(t.text) + " is too large");
    return std::nullopt;
  }
  int64_t v = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), v);
  return Duration{v * per};
}

// 'participant.Type', written without spaces.
std::optional<CommandRef> Parser::parse_command(const Token& kw, Loc* loc) {
  const Token& t = peek();
  if (t.kind != Tok::kIdent ||
      (peek(1).kind != Tok::kDot && (keyword(0, kStepWords) || keyword(0, kBlockWords)))) {
    if (kw.is("compensate") && t.is("retry")) {
      error(t.loc,
            "expected a command after 'compensate', found 'retry'; a compensation's retry "
            "policy is set with 'compensation retry ...'");
    } else {
      expected(t, "a command such as inventory.ReserveItems after " + quote(kw.text));
    }
    return std::nullopt;
  }
  next();
  *loc = t.loc;
  if (peek().kind != Tok::kDot) {
    error(t.loc, "command " + quote(t.text) + " must name its participant: 'participant." +
                     std::string(t.text) + "'");
    return std::nullopt;
  }
  const Token& dot = next();
  const Token& type = peek();
  if (type.kind != Tok::kIdent) {
    expected(type, "a command name after '" + std::string(t.text) + ".'");
    return std::nullopt;
  }
  next();
  loc->length = static_cast<int>(type.loc.offset + type.loc.length - t.loc.offset);
  if (dot.loc.offset != t.loc.offset + t.loc.length || type.loc.offset != dot.loc.offset + 1) {
    error(t.loc, "write the command without spaces: '" + std::string(t.text) + "." +
                     std::string(type.text) + "'");
    return std::nullopt;
  }
  if (peek().kind == Tok::kDot) {
    while (peek().kind == Tok::kDot) {
      next();
      if (peek().kind == Tok::kIdent) next();
    }
    error(t.loc, "a command is 'participant.Command', with one dot");
    return std::nullopt;
  }
  return CommandRef{std::string(t.text), std::string(type.text)};
}

// 'retry' (forever | N) {backoff D[..D] | multiplier X | jitter F}; unset parts from `base`.
std::optional<RetryPolicy> Parser::parse_retry(const RetryPolicy& base) {
  RetryPolicy p = base;
  bool ok = true;
  const Token& count = peek();
  if (count.is("forever")) {
    next();
    p.max_attempts = RetryPolicy::kForever;
  } else if (auto n = parse_int("a number of attempts or 'forever' after 'retry'")) {
    if (*n < 1) {
      error(count.loc, "retry counts attempts, the first included: use 1 or more, or 'forever'");
      ok = false;
    } else {
      p.max_attempts = static_cast<int>(*n);
    }
  } else {
    ok = false;
  }
  bool seen[3] = {false, false, false};
  while (keyword(0, kRetryWords) && !peek().is("forever")) {
    const Token& m = next();
    const int which = m.is("backoff") ? 0 : m.is("multiplier") ? 1 : 2;
    if (seen[which]) error(m.loc, "this retry policy already has a " + quote(m.text));
    if (which == 0) {
      auto lo = parse_duration("a duration such as 100ms after 'backoff'");
      std::optional<Duration> hi = lo;
      if (peek().kind == Tok::kDotDot) {
        next();
        hi = parse_duration("a duration such as 5s after '..'");
      }
      if (lo && hi && !seen[which]) {
        p.initial_backoff = *lo;
        p.max_backoff = *hi;
      }
      ok = ok && lo && hi;
    } else if (which == 2 && peek().kind != Tok::kNumber) {
      if (!seen[which]) p.jitter = RetryPolicy{}.jitter;  // plain 'jitter': the usual fraction
    } else {
      auto v = parse_real(which == 1 ? "a number such as 2 after 'multiplier'"
                                     : "a fraction such as 0.2 after 'jitter'");
      if (v && !seen[which]) (which == 1 ? p.multiplier : p.jitter) = *v;
      ok = ok && v;
    }
    seen[which] = true;
  }
  if (!ok) return std::nullopt;
  return p;
}

}  // namespace saga::dsl::internal
