#include "saga/definition.hpp"

#include <cstdio>

#include <set>

namespace saga {

namespace {

bool is_identifier(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(s[0])) return false;
  for (char c : s)
    if (!alpha(c) && !digit(c) && c != '-') return false;
  return true;
}

constexpr Duration kMaxDuration{24LL * 3600 * 1000};
constexpr int kMaxAttempts = 1000;
constexpr size_t kMaxSteps = 1000;

void check_policy(const RetryPolicy& p, const char* what, int step, const std::string& prefix,
                  std::vector<DefinitionError>* out) {
  auto add = [&](const std::string& m) {
    out->push_back({step, "retry-policy", prefix + what + m});
  };
  if (!p.forever() && (p.max_attempts < 1 || p.max_attempts > kMaxAttempts))
    add(" attempts must be between 1 and " + std::to_string(kMaxAttempts) + " (or forever)");
  if (p.initial_backoff <= Duration::zero() || p.initial_backoff > kMaxDuration)
    add(" initial backoff must be positive and at most 24h");
  if (p.max_backoff < p.initial_backoff || p.max_backoff > kMaxDuration)
    add(" max backoff must be at least the initial backoff and at most 24h");
  if (!(p.multiplier >= 1.0 && p.multiplier <= 100.0)) add(" multiplier must be in [1, 100]");
  if (!(p.jitter >= 0.0 && p.jitter <= 1.0)) add(" jitter must be in [0, 1]");
}

}  // namespace

Result<CommandRef> CommandRef::parse(const std::string& dotted) {
  auto dot = dotted.find('.');
  if (dot == std::string::npos || dotted.find('.', dot + 1) != std::string::npos)
    return Status::InvalidArgument("command '" + dotted + "' must be 'participant.Command'");
  CommandRef ref{dotted.substr(0, dot), dotted.substr(dot + 1)};
  if (!is_identifier(ref.participant) || !is_identifier(ref.type))
    return Status::InvalidArgument("command '" + dotted + "' must be 'participant.Command'");
  return ref;
}

int Definition::find_step(const std::string& step_name) const {
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps[i].name == step_name) return static_cast<int>(i);
  return -1;
}

StepKind Definition::kind(int step) const {
  for (int i = 0; i < step; ++i)
    if (!steps[i].compensatable()) return StepKind::kRetriable;
  return steps[step].compensatable() ? StepKind::kCompensatable : StepKind::kPivot;
}

std::vector<DefinitionError> validate(const Definition& def) {
  std::vector<DefinitionError> out;
  if (!is_identifier(def.name))
    out.push_back({-1, "saga-name", "saga name '" + def.name + "' must be an identifier"});
  if (def.version < 1 || def.version > 1'000'000)
    out.push_back({-1, "version", "version must be between 1 and 1000000"});
  if (def.steps.empty()) out.push_back({-1, "has-steps", "a saga needs at least one step"});
  if (def.steps.size() > kMaxSteps)
    out.push_back(
        {-1, "too-many-steps", "a saga has at most " + std::to_string(kMaxSteps) + " steps"});

  std::set<std::string> names;
  int pivot = -1;
  for (size_t i = 0; i < def.steps.size(); ++i) {
    const StepDef& s = def.steps[i];
    const int idx = static_cast<int>(i);
    const std::string p = "step '" + s.name + "': ";
    if (!is_identifier(s.name))
      out.push_back({idx, "step-name", p + "name must be an identifier ([A-Za-z_][A-Za-z0-9_-]*)"});
    if (!names.insert(s.name).second)
      out.push_back({idx, "unique-step-names", p + "another step has the same name"});
    if (!is_identifier(s.action.participant) || !is_identifier(s.action.type))
      out.push_back({idx, "command", p + "command must be 'participant.Command'"});
    if (s.compensation &&
        (!is_identifier(s.compensation->participant) || !is_identifier(s.compensation->type)))
      out.push_back({idx, "command", p + "compensation must be 'participant.Command'"});
    if (s.timeout <= Duration::zero() || s.timeout > kMaxDuration)
      out.push_back({idx, "timeout-range", p + "timeout must be positive and at most 24h"});
    check_policy(s.retry, "retry", idx, p, &out);
    if (s.compensatable()) check_policy(s.compensation_retry, "compensation retry", idx, p, &out);

    const int expected_prev = i == 0 ? 0 : def.steps[i - 1].stage;
    if (s.stage != expected_prev && s.stage != expected_prev + 1)
      out.push_back({idx, "stage-order", p + "stages must be numbered 0, 1, 2... in order"});
    bool parallel = (i > 0 && def.steps[i - 1].stage == s.stage) ||
                    (i + 1 < def.steps.size() && def.steps[i + 1].stage == s.stage);
    if (parallel && !s.compensatable())
      out.push_back({idx, "parallel-compensatable",
                     p + "a step in a parallel block must have a compensation "
                         "(the pivot and retriable steps run alone)"});

    if (pivot < 0) {
      if (!s.compensatable()) pivot = idx;
      continue;
    }
    const std::string& pv = def.steps[pivot].name;
    if (s.compensatable()) {
      out.push_back({idx, "compensation-after-pivot",
                     p + "comes after the pivot '" + pv +
                         "' (no compensation: once it succeeds the saga must complete), so it "
                         "would never be compensated; give '" +
                         pv +
                         "' a compensation, or move this step before it (if this step cannot "
                         "be undone, drop its compensation and retry it forever)"});
    } else if (!s.retry.forever()) {
      out.push_back({idx, "at-most-one-pivot",
                     p + "has no compensation but '" + pv +
                         "' is already the pivot; steps after the pivot must be retriable "
                         "(retry forever)"});
    }
  }
  return out;
}

Status check(const Definition& def) {
  auto errors = validate(def);
  if (errors.empty()) return Status::Ok();
  std::string msg = "saga '" + def.name + "' v" + std::to_string(def.version) + ": ";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i) msg += "; ";
    msg += errors[i].message + " [" + errors[i].rule + "]";
  }
  return Status::InvalidArgument(msg);
}

Definition::Builder::Builder(std::string name, int version) {
  def_.name = std::move(name);
  def_.version = version;
}

Definition::Builder& Definition::Builder::default_timeout(Duration t) {
  timeout_ = t;
  return *this;
}
Definition::Builder& Definition::Builder::default_retry(RetryPolicy p) {
  retry_ = p;
  return *this;
}
Definition::Builder& Definition::Builder::default_compensation_retry(RetryPolicy p) {
  compensation_retry_ = p;
  return *this;
}

StepDef Definition::Builder::make_step(std::string name, const std::string& action,
                                       const std::string& compensation) {
  StepDef s;
  s.name = std::move(name);
  s.retry = retry_;
  s.compensation_retry = compensation_retry_;
  s.timeout = timeout_;
  auto a = CommandRef::parse(action);
  if (a.ok()) {
    s.action = *a;
  } else {
    parse_errors_.push_back("step '" + s.name + "': " + a.status().message());
  }
  if (!compensation.empty()) {
    auto c = CommandRef::parse(compensation);
    if (c.ok()) {
      s.compensation = *c;
    } else {
      parse_errors_.push_back("step '" + s.name + "': " + c.status().message());
    }
  }
  return s;
}

Definition::Builder& Definition::Builder::step(std::string name, const std::string& action,
                                               const std::string& compensation) {
  return step(make_step(std::move(name), action, compensation));
}

Definition::Builder& Definition::Builder::step(StepDef s) {
  s.stage = def_.stage_count();
  def_.steps.push_back(std::move(s));
  return *this;
}

Definition::Builder& Definition::Builder::parallel(std::vector<StepDef> steps) {
  const int stage = def_.stage_count();
  for (auto& s : steps) {
    s.stage = stage;
    def_.steps.push_back(std::move(s));
  }
  return *this;
}

Definition::Builder& Definition::Builder::timeout(Duration t) {
  if (!def_.steps.empty()) def_.steps.back().timeout = t;
  return *this;
}
Definition::Builder& Definition::Builder::retry(RetryPolicy p) {
  if (!def_.steps.empty()) def_.steps.back().retry = p;
  return *this;
}
Definition::Builder& Definition::Builder::compensation_retry(RetryPolicy p) {
  if (!def_.steps.empty()) def_.steps.back().compensation_retry = p;
  return *this;
}

Result<Definition> Definition::Builder::build() const {
  if (!parse_errors_.empty()) {
    std::string msg = "saga '" + def_.name + "': ";
    for (size_t i = 0; i < parse_errors_.size(); ++i) msg += (i ? "; " : "") + parse_errors_[i];
    return Status::InvalidArgument(msg);
  }
  Status st = check(def_);
  if (!st.ok()) return st;
  return def_;
}

std::string fingerprint(const Definition& def) {
  std::string text = def.name + '\n' + std::to_string(def.version) + '\n';
  auto policy = [&](const RetryPolicy& p) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%d %lld %.17g %lld %.17g|", p.max_attempts,
                  static_cast<long long>(p.initial_backoff.count()), p.multiplier,
                  static_cast<long long>(p.max_backoff.count()), p.jitter);
    text += buf;
  };
  for (const StepDef& s : def.steps) {
    text += s.name + '|' + std::to_string(s.stage) + '|' + s.action.to_string() + '|' +
            (s.compensation ? s.compensation->to_string() : "") + '|' +
            std::to_string(s.timeout.count()) + '|';
    policy(s.retry);
    policy(s.compensation_retry);
    text += '\n';
  }
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

}  // namespace saga
