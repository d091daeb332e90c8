// Definition: what a saga type is. Built with Definition::Builder (or parsed from a .saga file by
// the DSL) and checked by validate() before an engine accepts it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "saga/status.hpp"

namespace saga {

using Duration = std::chrono::milliseconds;

// How often, and how far apart, an action or a compensation is attempted.
// Delay before attempt n+1 = min(initial_backoff * multiplier^(n-1), max_backoff), then reduced
// by up to `jitter` (a fraction in [0,1]) using the saga's recorded seed.
struct RetryPolicy {
  static constexpr int kForever = -1;
  int max_attempts = 3;  // all attempts, the first included; kForever: until it succeeds
  Duration initial_backoff{100};
  double multiplier = 2.0;
  Duration max_backoff{5000};
  double jitter = 0.2;

  bool forever() const { return max_attempts == kForever; }
  bool operator==(const RetryPolicy&) const = default;
};

// A command sent to a participant: `participant` is the channel (Kafka topic
// "<participant>.commands"), `type` the message type, e.g. {"inventory", "ReserveItems"}.
struct CommandRef {
  std::string participant;
  std::string type;

  // Parses "participant.Type".
  static Result<CommandRef> parse(const std::string& dotted);
  std::string to_string() const { return participant + "." + type; }
  bool operator==(const CommandRef&) const = default;
};

struct StepDef {
  std::string name;
  CommandRef action;
  std::optional<CommandRef> compensation;  // none: the pivot or a retriable step
  RetryPolicy retry;
  RetryPolicy compensation_retry{10, Duration{200}, 2.0, Duration{30000}, 0.2};
  Duration timeout{30000};  // per attempt
  // Steps with the same stage index run in parallel; stages run in order. Set by the builder.
  int stage = 0;

  bool compensatable() const { return compensation.has_value(); }
  bool operator==(const StepDef&) const = default;
};

// Kinds from the saga literature: compensatable steps, then at most one pivot (the first step
// without a compensation), then retriable steps (retry forever, never compensated).
enum class StepKind { kCompensatable, kPivot, kRetriable };

struct Definition {
  std::string name;
  int version = 1;
  std::vector<StepDef> steps;

  int stage_count() const { return steps.empty() ? 0 : steps.back().stage + 1; }
  int find_step(const std::string& step_name) const;  // -1 when absent
  StepKind kind(int step) const;
  bool operator==(const Definition&) const = default;

  class Builder;
};

// One broken rule. `step` is the index of the offending step, or -1 for the whole definition.
struct DefinitionError {
  int step = -1;
  std::string rule;  // short stable id, e.g. "unique-step-names"
  std::string message;
};

// 16 hex digits identifying everything the state machine reads of a definition (steps,
// commands, timeouts, retry policies). Recorded when a saga starts, so that a definition
// changed under the same name and version is noticed.
std::string fingerprint(const Definition& def);

// Canonical .saga text (docs/dsl.md): saga::dsl::parse() of it gives back `def`. The event log
// stores it beside the sagas that ran it, so that a log describes itself.
std::string definition_text(const Definition& def);

// Checks every rule and returns every violation (empty: valid).
std::vector<DefinitionError> validate(const Definition& def);
// validate() folded into one Status naming the saga, the step and the rule.
Status check(const Definition& def);

class Definition::Builder {
 public:
  Builder(std::string name, int version = 1);

  // Defaults applied to the steps added after the call.
  Builder& default_timeout(Duration timeout);
  Builder& default_retry(RetryPolicy policy);
  Builder& default_compensation_retry(RetryPolicy policy);

  // Adds a sequential step. `action` and `compensation` are "participant.Type"; an empty
  // compensation makes the step the pivot or a retriable step.
  Builder& step(std::string name, const std::string& action, const std::string& compensation = "");
  Builder& step(StepDef step);
  // A step with the builder's current defaults, for parallel().
  StepDef make_step(std::string name, const std::string& action,
                    const std::string& compensation = "");
  // Adds steps that run in parallel: all must succeed; see docs/architecture.md for the
  // compensation order when one fails.
  Builder& parallel(std::vector<StepDef> steps);

  // Options for the most recently added step.
  Builder& timeout(Duration timeout);
  Builder& retry(RetryPolicy policy);
  Builder& compensation_retry(RetryPolicy policy);

  // The definition, if every rule holds.
  Result<Definition> build() const;

 private:
  Definition def_;
  Duration timeout_{30000};
  RetryPolicy retry_;
  RetryPolicy compensation_retry_{10, Duration{200}, 2.0, Duration{30000}, 0.2};
  std::vector<std::string> parse_errors_;
};

}  // namespace saga
