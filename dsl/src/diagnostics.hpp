// Internal: source locations and the collector of errors found while reading one file.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "saga/dsl.hpp"

namespace saga::dsl::internal {

// A span of the source text.
struct Loc {
  uint32_t offset = 0;
  int line = 1;
  int column = 1;
  int length = 1;
};

// Collects errors for one file; take() returns them in source order with their source lines.
// Keeps at most one error per location, so a later check never repeats an earlier complaint.
class Diagnostics {
 public:
  Diagnostics(std::string_view source, std::string_view file) : source_(source), file_(file) {}

  void error(const Loc& at, std::string message);
  // An error about the whole file (no line).
  void file_error(std::string message);
  bool has_error_at(uint32_t offset) const;
  // Whether any error, shown or not, lies in [begin, end).
  bool has_error_in(uint32_t begin, uint32_t end) const;
  int count() const { return total_; }
  std::vector<Diagnostic> take();

 private:
  struct Pending {
    Loc at;
    std::string message;
    bool whole_file = false;
  };
  std::string shown_line(const Loc& at, int* caret) const;

  std::string_view source_;
  std::string file_;
  std::vector<Pending> pending_;  // at most a few times kMaxErrors
  // Where every error was, kept even when its message is not (for has_error_in()).
  mutable std::vector<uint32_t> offsets_;
  mutable bool offsets_sorted_ = true;
  int total_ = 0;
};

// "did you mean 'step'?" when `word` is a near miss of one of `words`, else
// "expected <expected>".
std::string hint(std::string_view word, std::span<const std::string_view> words,
                 const std::string& expected);

// `text` quoted for a message, shortened when long: 'abc' or 'abcdef...'.
std::string quote(std::string_view text);

}  // namespace saga::dsl::internal
