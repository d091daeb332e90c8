// Internal: the syntax tree of a .saga file, i.e. the Definitions plus where each part came from
// (so that saga::validate() errors can be located), and the parser that builds it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lexer.hpp"
#include "saga/definition.hpp"

namespace saga::dsl::internal {

// Where one step's parts were written. Inherited settings point at the saga default's clause;
// missing parts point at the step's name.
struct StepSource {
  Loc name, command, compensate;
  std::optional<Loc> timeout, retry, compensation_retry;
  bool had_error = false;
};

struct SagaSource {
  Definition def;
  Loc name, version;
  int opened_line = 1;
  bool header_error = false;  // name or version missing or malformed
  bool had_error = false;     // any error inside this saga
  // The index of the first step whose compensation or retry policy an error may have hidden,
  // or where an error may have hidden a whole step: from there on, the pivot rules could report
  // things that are not there. npos: none.
  std::size_t unsure_from = std::string::npos;
  bool too_many_steps = false;
  uint32_t begin = 0, end = 0;  // source offsets of 'saga' and of what follows the saga
  // The saga-level defaults, as written (absent: the built-in defaults).
  Duration default_timeout{StepDef{}.timeout};
  RetryPolicy default_retry{StepDef{}.retry};
  RetryPolicy default_compensation_retry{StepDef{}.compensation_retry};
  std::optional<Loc> default_timeout_loc, default_retry_loc, default_compensation_retry_loc;
  std::vector<StepSource> steps;  // parallel to def.steps
};

// Parses every saga; syntax errors go to `diags`, sagas with errors are still returned
// (had_error set) so that later checks can skip what the syntax errors would distort.
std::vector<SagaSource> parse_tokens(const std::vector<Token>& tokens, Diagnostics& diags);

}  // namespace saga::dsl::internal
