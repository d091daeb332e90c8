// Definition -> canonical .saga text (docs/dsl.md), which the log stores beside each saga and the
// DSL parses back. The most common timeout and retry policies become saga defaults; each step
// then states only what differs from them.
#include <algorithm>
#include <charconv>
#include <string>

#include "saga/definition.hpp"

namespace saga {

namespace {

std::string duration(Duration d) {
  const int64_t ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// The shortest decimal that reads back as the same double, without an exponent.
std::string real(double v) {
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  if (r.ec != std::errc()) return "0";
  return std::string(buf, r.ptr);
}

// "retry ..." stating the attempts and every part that differs from `base`.
std::string retry_clause(const RetryPolicy& p, const RetryPolicy& base) {
  std::string out =
      "retry " + (p.forever() ? std::string("forever") : std::to_string(p.max_attempts));
  if (p.initial_backoff != base.initial_backoff || p.max_backoff != base.max_backoff) {
    out += " backoff " + duration(p.initial_backoff);
    if (p.max_backoff != p.initial_backoff) out += ".." + duration(p.max_backoff);
  }
  if (p.multiplier != base.multiplier) out += " multiplier " + real(p.multiplier);
  if (p.jitter != base.jitter) out += " jitter " + real(p.jitter);
  return out;
}

template <typename T, typename Get>
T most_common(const std::vector<StepDef>& steps, Get get, T fallback) {
  std::size_t best = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    std::size_t n = 0;
    for (const StepDef& s : steps) n += get(s) == get(steps[i]);
    if (n > best) {
      best = n;
      fallback = get(steps[i]);
    }
  }
  return fallback;
}

struct Defaults {
  Duration timeout;
  RetryPolicy retry;
  RetryPolicy compensation_retry;
};

Defaults choose_defaults(const Definition& def) {
  const StepDef builtin;
  Defaults d;
  d.timeout = most_common(
      def.steps, [](const StepDef& s) { return s.timeout; }, builtin.timeout);
  d.retry = most_common(
      def.steps, [](const StepDef& s) { return s.retry; }, builtin.retry);
  // Steps without a compensation cannot state a compensation policy, so theirs must be the
  // default when they agree.
  std::vector<StepDef> plain;
  for (const StepDef& s : def.steps)
    if (!s.compensatable()) plain.push_back(s);
  const auto comp = [](const StepDef& s) { return s.compensation_retry; };
  const bool agree =
      !plain.empty() && std::all_of(plain.begin(), plain.end(), [&](const StepDef& s) {
        return s.compensation_retry == plain.front().compensation_retry;
      });
  d.compensation_retry = agree ? plain.front().compensation_retry
                               : most_common(def.steps, comp, builtin.compensation_retry);
  return d;
}

void print_step(const StepDef& s, const Defaults& d, const std::string& indent, std::string* out) {
  const std::string in = indent + "  ";
  *out += indent + "step " + s.name + " {\n";
  *out += in + "command    " + s.action.to_string() + "\n";
  if (s.compensation) *out += in + "compensate " + s.compensation->to_string() + "\n";
  if (s.timeout != d.timeout) *out += in + "timeout " + duration(s.timeout) + "\n";
  if (s.retry != d.retry) *out += in + retry_clause(s.retry, d.retry) + "\n";
  if (s.compensation && s.compensation_retry != d.compensation_retry)
    *out += in + "compensation " + retry_clause(s.compensation_retry, d.compensation_retry) + "\n";
  *out += indent + "}\n";
}

}  // namespace

std::string definition_text(const Definition& def) {
  const StepDef builtin;
  const Defaults d = choose_defaults(def);
  std::string out = "saga " + def.name + " version " + std::to_string(def.version) + " {\n";
  bool any_default = false;
  if (d.timeout != builtin.timeout) {
    out += "  timeout " + duration(d.timeout) + "\n";
    any_default = true;
  }
  if (d.retry != builtin.retry) {
    out += "  " + retry_clause(d.retry, builtin.retry) + "\n";
    any_default = true;
  }
  if (d.compensation_retry != builtin.compensation_retry) {
    out +=
        "  compensation " + retry_clause(d.compensation_retry, builtin.compensation_retry) + "\n";
    any_default = true;
  }
  for (std::size_t i = 0; i < def.steps.size();) {
    std::size_t end = i + 1;
    while (end < def.steps.size() && def.steps[end].stage == def.steps[i].stage) ++end;
    if (i > 0 || any_default) out += "\n";
    if (end - i == 1) {
      print_step(def.steps[i], d, "  ", &out);
    } else {
      out += "  parallel {\n";
      for (std::size_t j = i; j < end; ++j) print_step(def.steps[j], d, "    ", &out);
      out += "  }\n";
    }
    i = end;
  }
  return out + "}\n";
}

}  // namespace saga
