// Internal: the Parser class, shared by parser.cpp (blocks: saga, parallel, step) and
// clauses.cpp (values: numbers, durations, commands, retry policies).
#pragma once

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "parser.hpp"

namespace saga::dsl::internal {

using Words = std::span<const std::string_view>;
inline constexpr std::array<std::string_view, 5> kSagaWords = {"step", "parallel", "timeout",
                                                               "retry", "compensation"};
inline constexpr std::array<std::string_view, 5> kStepWords = {"command", "compensate", "timeout",
                                                               "retry", "compensation"};
inline constexpr std::array<std::string_view, 3> kBlockWords = {"saga", "step", "parallel"};
inline constexpr std::array<std::string_view, 1> kParallelWords = {"step"};
inline constexpr std::array<std::string_view, 4> kRetryWords = {"backoff", "multiplier", "jitter",
                                                                "forever"};

inline bool contains(Words words, std::string_view w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

inline std::string describe(const Token& t) {
  return t.kind == Tok::kEnd ? "end of file" : quote(t.text);
}

// Recursive descent over a grammar of fixed depth (file > saga > parallel > step > retry), so
// the call depth is bounded whatever the input.
class Parser {
 public:
  Parser(const std::vector<Token>& tokens, Diagnostics& diags) : toks_(tokens), diags_(diags) {}

  std::vector<SagaSource> run();

 private:
  // ---- tokens
  const Token& peek(std::size_t k = 0) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  const Token& next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool at_end() const { return peek().kind == Tok::kEnd; }
  // Whether token pos_+k is one of `words` used as a keyword (not a part of a command).
  bool keyword(std::size_t k, Words words) const {
    const std::size_t i = std::min(pos_ + k, toks_.size() - 1);
    return toks_[i].kind == Tok::kIdent && contains(words, toks_[i].text) &&
           !(i > 0 && toks_[i - 1].kind == Tok::kDot);
  }

  // ---- errors and recovery
  void error(const Loc& at, std::string message) {
    diags_.error(at, std::move(message));
    if (saga_) saga_->had_error = true;
    if (saga_ && !benign_)
      saga_->unsure_from = std::min(saga_->unsure_from, saga_->def.steps.size());
    if (step_) step_->had_error = true;
  }
  // Errors that cannot hide a compensation, a retry policy or a step.
  void benign_error(const Loc& at, std::string message) {
    const bool was = benign_;
    benign_ = true;
    error(at, std::move(message));
    benign_ = was;
  }
  void expected(const Token& t, const std::string& what) {
    error(t.loc, "expected " + what + ", found " + describe(t));
  }
  // Skips a balanced { ... } starting at the current '{'.
  void skip_block() {
    int depth = 0;
    do {
      const Token& t = next();
      if (t.kind == Tok::kLBrace) ++depth;
      if (t.kind == Tok::kRBrace) --depth;
      if (t.kind == Tok::kEnd) return;
    } while (depth > 0);
  }
  // Skips to a keyword of `words` or of an enclosing block, or to a '}'.
  void skip_clause(Words words) {
    while (!at_end() && peek().kind != Tok::kRBrace && !keyword(0, words) &&
           !keyword(0, kBlockWords)) {
      if (peek().kind == Tok::kLBrace) {
        skip_block();
      } else {
        next();
      }
    }
  }

  // ---- values (clauses.cpp)
  std::optional<int64_t> parse_int(const std::string& what);
  std::optional<double> parse_real(const std::string& what);
  std::optional<Duration> parse_duration(const std::string& what);
  std::optional<CommandRef> parse_command(const Token& kw, Loc* loc);
  std::optional<RetryPolicy> parse_retry(const RetryPolicy& base);

  // ---- blocks (parser.cpp)
  void parse_saga(std::vector<SagaSource>& out);
  void parse_saga_body(SagaSource& s);
  void parse_default(SagaSource& s, bool seen_step);
  void parse_parallel(SagaSource& s);
  void parse_step(SagaSource& s, int stage);

  const std::vector<Token>& toks_;
  Diagnostics& diags_;
  std::size_t pos_ = 0;
  SagaSource* saga_ = nullptr;
  StepSource* step_ = nullptr;
  bool benign_ = false;
  std::map<std::pair<std::string, int>, int> defined_;  // saga name and version -> line
};

}  // namespace saga::dsl::internal
