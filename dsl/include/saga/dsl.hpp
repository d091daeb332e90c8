// The saga DSL: `.saga` text -> saga::Definition, with compiler-style diagnostics, and back
// (print) or to a diagram (to_dot, to_mermaid). docs/dsl.md is the language reference.
//
// Start with parse_file(); load_file() folds the diagnostics into a Status for embedders.
// Every function is pure and thread-compatible. None throws, crashes or allocates without bound
// on any input: the limits below turn oversized or hostile input into diagnostics.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "saga/definition.hpp"
#include "saga/status.hpp"

namespace saga::dsl {

inline constexpr std::size_t kMaxFileBytes = 1 << 20;
inline constexpr int kMaxIdentifierLength = 128;  // as saga::validate() requires
inline constexpr int kMaxNesting = 16;            // braces open at once
inline constexpr int kMaxTokens = 100'000;
inline constexpr int kMaxStepsPerSaga = 1000;
inline constexpr int kMaxErrors = 50;  // further errors are summarised in one last diagnostic

// One error, located like a compiler's: "file:line:column: error: message".
struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the error concerns the whole file (e.g. it cannot be read)
  int column = 0;  // 1-based, in bytes
  int length = 1;  // bytes underlined from `column` (the offending token)
  std::string message;
  // The offending line without its newline, shortened around the column when very long;
  // `caret` is the 0-based offset of `column` within it.
  std::string source_line;
  int caret = 0;

  bool operator==(const Diagnostic&) const = default;
};

struct ParseResult {
  // The sagas that parsed and validated cleanly, in file order (all of them when ok()).
  std::vector<Definition> definitions;
  // Every error in the file, in source order.
  std::vector<Diagnostic> errors;

  bool ok() const { return errors.empty(); }
  // The saga named `name` with `version`, or its highest version when version == 0.
  // nullptr when absent.
  const Definition* find(std::string_view name, int version = 0) const;
};

// Parses and validates (saga::validate()) every saga in `text`. `filename` prefixes the
// diagnostics.
ParseResult parse(std::string_view text, std::string_view filename = "<input>");
// Reads `path` (at most kMaxFileBytes) and parses it; diagnostics name the path as given.
ParseResult parse_file(const std::string& path);
// parse_file() for embedders: the definitions, or InvalidArgument carrying format(errors).
Result<std::vector<Definition>> load_file(const std::string& path);

// "file:12:5: error: message", then the source line and a caret under the column.
std::string format(const Diagnostic& d);
// Each diagnostic formatted, in order.
std::string format(const std::vector<Diagnostic>& ds);

// Canonical `.saga` text; parse(print(d)) == d for every valid Definition d.
std::string print(const Definition& def);
std::string print(const std::vector<Definition>& defs);

// Diagrams: steps in order, parallel blocks grouped, compensations dashed, the pivot and
// retriable steps marked. DOT renders with Graphviz (`dot -Tpng`); Mermaid with any Mermaid
// viewer (GitHub, GitLab, mermaid.live).
std::string to_dot(const Definition& def);
std::string to_mermaid(const Definition& def);

}  // namespace saga::dsl
