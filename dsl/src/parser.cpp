// The parser's blocks: file, saga, parallel, step. After an error it skips to the next keyword
// or brace of the enclosing block and goes on, so that one run reports every error.
#include "parser_impl.hpp"

namespace saga::dsl::internal {

namespace {

std::string misplaced_retry_word(std::string_view word) {
  if (word == "forever") return "'forever' goes right after 'retry': 'retry forever'";
  return quote(word) + " must follow 'retry', as in 'retry 3 backoff 1s..10s'";
}

}  // namespace

std::vector<SagaSource> Parser::run() {
  std::vector<SagaSource> out;
  while (!at_end()) {
    const Token& t = peek();
    if (keyword(0, std::array<std::string_view, 1>{"saga"})) {
      parse_saga(out);
      continue;
    }
    if (t.kind == Tok::kIdent && (contains(kSagaWords, t.text) || contains(kStepWords, t.text))) {
      error(t.loc, quote(t.text) + " must be inside a saga: saga Name version 1 { ... }");
    } else {
      expected(t, "'saga'");
    }
    next();
    while (!at_end() && !keyword(0, std::array<std::string_view, 1>{"saga"})) {
      if (peek().kind == Tok::kLBrace) {
        skip_block();
      } else {
        next();
      }
    }
  }
  return out;
}

void Parser::parse_saga(std::vector<SagaSource>& out) {
  SagaSource s;
  saga_ = &s;
  const Token& kw = next();
  s.begin = kw.loc.offset;
  s.opened_line = kw.loc.line;
  s.name = kw.loc;
  const Token& name = peek();
  if (name.kind == Tok::kIdent && !(name.is("version") && peek(1).kind == Tok::kNumber) &&
      !keyword(0, kBlockWords)) {
    next();
    s.name = name.loc;
    s.def.name = std::string(name.text);
  } else {
    benign_ = true;
    expected(name, "a saga name after 'saga'");
    s.header_error = true;
  }
  s.version = s.name;
  if (peek().is("version")) {
    next();
    s.version = peek().loc;
    benign_ = true;
    if (auto v = parse_int("a version number after 'version'")) {
      s.def.version = static_cast<int>(*v);
    } else {
      s.header_error = true;
    }
  }
  benign_ = false;
  bool body = true;
  if (peek().kind == Tok::kLBrace) {
    next();
  } else {
    expected(peek(), "'{' after the saga header");
    s.header_error = true;
    if (!keyword(0, kSagaWords)) {
      while (!at_end() && peek().kind != Tok::kLBrace && !keyword(0, kBlockWords)) next();
      body = peek().kind == Tok::kLBrace;
      if (body) next();
    }
  }
  if (body) parse_saga_body(s);
  s.end = peek().kind == Tok::kEnd ? UINT32_MAX : peek().loc.offset;
  if (!s.header_error) {
    const auto [it, fresh] = defined_.try_emplace({s.def.name, s.def.version}, s.name.line);
    if (!fresh) {
      benign_error(s.name, "saga " + quote(s.def.name) + " version " +
                               std::to_string(s.def.version) + " is already defined at line " +
                               std::to_string(it->second));
    }
  }
  saga_ = nullptr;
  out.push_back(std::move(s));
}

void Parser::parse_saga_body(SagaSource& s) {
  bool seen_step = false;
  const std::string in_saga = " in saga " + quote(s.def.name);
  while (true) {
    const Token& t = peek();
    if (t.kind == Tok::kRBrace) {
      next();
      return;
    }
    if (t.kind == Tok::kEnd || keyword(0, std::array<std::string_view, 1>{"saga"})) {
      expected(t, "'}' to close saga " + quote(s.def.name) + " (opened at line " +
                      std::to_string(s.opened_line) + ")");
      return;
    }
    if (t.kind == Tok::kLBrace) {
      error(t.loc, "unexpected '{'" + in_saga);
      skip_block();
      continue;
    }
    if (t.kind != Tok::kIdent) {
      expected(t, "a step, a parallel block or a saga default");
      next();
      skip_clause(kSagaWords);
      continue;
    }
    if (t.is("step")) {
      seen_step = true;
      parse_step(s, s.def.stage_count());
    } else if (t.is("parallel")) {
      seen_step = true;
      parse_parallel(s);
    } else if (t.is("timeout") || t.is("retry") || t.is("compensation")) {
      parse_default(s, seen_step);
    } else {
      if (t.is("command") || t.is("compensate")) {
        error(t.loc, quote(t.text) + " must be inside a step");
      } else if (t.is("version")) {
        error(t.loc, "'version' belongs in the saga header: saga Name version 2 {");
      } else if (contains(kRetryWords, t.text)) {
        error(t.loc, misplaced_retry_word(t.text));
      } else {
        error(t.loc,
              "unknown keyword " + quote(t.text) + in_saga + "; " +
                  hint(t.text, kSagaWords, "step, parallel, timeout, retry or compensation retry"));
      }
      next();
      skip_clause(kSagaWords);
    }
  }
}

void Parser::parse_default(SagaSource& s, bool seen_step) {
  const Token& kw = next();
  if (seen_step) {
    benign_error(kw.loc, "saga defaults must come before the first step; move this " +
                             quote(kw.text) + " up, or into a step");
  }
  const auto dup = [&](const std::optional<Loc>& prev, const char* what) {
    if (!prev) return false;
    error(kw.loc, "saga " + quote(s.def.name) + " already has a default " + what + " (line " +
                      std::to_string(prev->line) + ")");
    return true;
  };
  if (kw.is("timeout")) {
    const Loc at = peek().loc;
    benign_ = true;
    auto d = parse_duration("a duration such as 30s after 'timeout'");
    benign_ = false;
    if (!dup(s.default_timeout_loc, "timeout") && d && !seen_step) {
      s.default_timeout = *d;
      s.default_timeout_loc = at;
    }
  } else if (kw.is("retry")) {
    auto p = parse_retry(s.default_retry);
    if (!dup(s.default_retry_loc, "retry policy") && p && !seen_step) {
      s.default_retry = *p;
      s.default_retry_loc = kw.loc;
    }
  } else {
    if (!peek().is("retry")) {
      expected(peek(), "'retry' after 'compensation'");
      skip_clause(kSagaWords);
      return;
    }
    next();
    auto p = parse_retry(s.default_compensation_retry);
    if (!dup(s.default_compensation_retry_loc, "compensation retry policy") && p && !seen_step) {
      s.default_compensation_retry = *p;
      s.default_compensation_retry_loc = kw.loc;
    }
  }
}

void Parser::parse_parallel(SagaSource& s) {
  const Token& kw = next();
  const int stage = s.def.stage_count();
  const std::size_t before = s.def.steps.size();
  const int errors_before = diags_.count();
  if (peek().kind == Tok::kLBrace) {
    next();
  } else {
    expected(peek(), "'{' after 'parallel'");
    if (!peek().is("step")) {
      skip_clause(kSagaWords);
      return;
    }
  }
  while (true) {
    const Token& t = peek();
    if (t.kind == Tok::kRBrace) {
      next();
      break;
    }
    if (t.kind == Tok::kEnd || keyword(0, std::array<std::string_view, 1>{"saga"})) {
      expected(t, "'}' to close the parallel block (opened at line " + std::to_string(kw.loc.line) +
                      ")");
      break;
    }
    if (t.is("step")) {
      parse_step(s, stage);
      continue;
    }
    if (t.is("parallel")) {
      error(t.loc, "parallel blocks cannot be nested");
    } else if (t.kind == Tok::kIdent && (contains(kStepWords, t.text))) {
      error(t.loc,
            "only steps can be inside a parallel block; put " + quote(t.text) + " inside a step");
    } else if (t.kind == Tok::kLBrace) {
      error(t.loc, "unexpected '{' in a parallel block");
      skip_block();
      continue;
    } else {
      expected(t, "a step in the parallel block");
    }
    next();
    if (peek().kind == Tok::kLBrace) skip_block();
    skip_clause(kParallelWords);
  }
  const std::size_t n = s.def.steps.size() - before;
  if (n < 2 && diags_.count() == errors_before) {
    benign_error(kw.loc, n == 0 ? "a parallel block needs at least two steps; this one is empty"
                                : "a parallel block needs at least two steps; write a single step "
                                  "without 'parallel'");
  }
}

void Parser::parse_step(SagaSource& s, int stage) {
  StepDef st;
  StepSource src;
  step_ = &src;
  const Token& kw = next();
  src.name = kw.loc;
  const Token& name = peek();
  if (name.kind == Tok::kIdent &&
      (peek(1).kind == Tok::kLBrace || (!keyword(0, kStepWords) && !keyword(0, kBlockWords)))) {
    next();
    src.name = name.loc;
    st.name = std::string(name.text);
  } else {
    expected(name, "a step name after 'step'");
  }
  src.command = src.compensate = src.name;
  st.stage = stage;
  st.timeout = s.default_timeout;
  st.retry = s.default_retry;
  st.compensation_retry = s.default_compensation_retry;
  src.timeout = s.default_timeout_loc;
  src.retry = s.default_retry_loc;
  src.compensation_retry = s.default_compensation_retry_loc;

  const std::string in_step = " in step " + quote(st.name);
  bool body = true;
  if (peek().kind == Tok::kLBrace) {
    next();
  } else {
    expected(peek(), "'{' after step " + quote(st.name));
    body = keyword(0, kStepWords);
  }
  bool has[5] = {false, false, false, false, false};  // the kStepWords
  int lines[5] = {0, 0, 0, 0, 0};
  Loc compensation_retry_at;
  bool unknown_keyword = false;  // perhaps a misspelt 'command'
  while (body) {
    const Token& t = peek();
    if (t.kind == Tok::kRBrace) {
      next();
      break;
    }
    if (t.kind == Tok::kEnd || keyword(0, kBlockWords)) {
      expected(t, "'}' to close step " + quote(st.name) + " (opened at line " +
                      std::to_string(kw.loc.line) + ")");
      break;
    }
    if (t.kind == Tok::kLBrace) {
      error(t.loc, "unexpected '{'" + in_step);
      skip_block();
      continue;
    }
    if (!keyword(0, kStepWords)) {
      if (t.kind != Tok::kIdent) {
        expected(t, "a step option (command, compensate, timeout, retry or compensation retry)");
      } else if (contains(kRetryWords, t.text)) {
        error(t.loc, misplaced_retry_word(t.text));
      } else {
        unknown_keyword = true;
        error(t.loc, "unknown keyword " + quote(t.text) + in_step + "; " +
                         hint(t.text, kStepWords,
                              "command, compensate, timeout, retry or compensation retry"));
      }
      next();
      skip_clause(kStepWords);
      continue;
    }
    const int which = static_cast<int>(std::find(kStepWords.begin(), kStepWords.end(), t.text) -
                                       kStepWords.begin());
    const Token& kw2 = next();
    const bool dup = has[which];
    if (which == 4) compensation_retry_at = kw2.loc;
    if (dup) {
      const char* what[] = {"command", "compensation", "timeout", "retry policy",
                            "compensation retry policy"};
      error(kw2.loc, "step " + quote(st.name) + " already has a " + what[which] + " (line " +
                         std::to_string(lines[which]) + ")");
    } else {
      has[which] = true;
      lines[which] = kw2.loc.line;
    }
    switch (which) {
      case 0:
      case 1: {
        Loc at;
        benign_ = which == 0;
        auto c = parse_command(kw2, &at);
        benign_ = false;
        if (c && !dup) {
          (which == 0 ? st.action : st.compensation.emplace()) = *c;
          (which == 0 ? src.command : src.compensate) = at;
        }
        break;
      }
      case 2: {
        const Loc at = peek().loc;
        benign_ = true;
        auto d = parse_duration("a duration such as 30s after 'timeout'");
        benign_ = false;
        if (d && !dup) {
          st.timeout = *d;
          src.timeout = at;
        }
        break;
      }
      case 3: {
        auto p = parse_retry(s.default_retry);
        if (p && !dup) {
          st.retry = *p;
          src.retry = kw2.loc;
        }
        break;
      }
      default: {
        if (!peek().is("retry")) {
          expected(peek(), "'retry' after 'compensation'");
          skip_clause(kStepWords);
          break;
        }
        next();
        auto p = parse_retry(s.default_compensation_retry);
        if (p && !dup) {
          st.compensation_retry = *p;
          src.compensation_retry = kw2.loc;
        }
        break;
      }
    }
  }
  if (body && !has[0] && !unknown_keyword)
    benign_error(src.name, "step " + quote(st.name) + " has no command");
  if (has[4] && !has[1]) {
    benign_error(
        compensation_retry_at,
        "step " + quote(st.name) + " has a compensation retry policy but no 'compensate' command");
  }
  step_ = nullptr;
  if (s.def.steps.size() >= static_cast<std::size_t>(kMaxStepsPerSaga)) {
    if (!s.too_many_steps) {
      benign_error(src.name, "saga " + quote(s.def.name) + " has more than " +
                                 std::to_string(kMaxStepsPerSaga) + " steps");
    }
    s.too_many_steps = true;
    return;
  }
  s.def.steps.push_back(std::move(st));
  s.steps.push_back(src);
}
std::vector<SagaSource> parse_tokens(const std::vector<Token>& tokens, Diagnostics& diags) {
  return Parser(tokens, diags).run();
}

}  // namespace saga::dsl::internal
