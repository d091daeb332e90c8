// The entry points: read, lex, parse, then check each saga with saga::validate() and put its
// errors at the clause that caused them.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lexer.hpp"
#include "parser.hpp"
#include "saga/dsl.hpp"

namespace saga::dsl {

namespace {

using internal::Diagnostics;
using internal::Loc;
using internal::SagaSource;
using internal::StepSource;

// Rules about the shape of the whole saga: a syntax error elsewhere (a step skipped, a
// compensation unreadable) would make them report things that are not there.
bool structural(const std::string& rule) {
  return rule == "has-steps" || rule == "compensation-after-pivot" || rule == "at-most-one-pivot" ||
         rule == "parallel-compensatable" || rule == "stage-order";
}

// validate() says "step 'x': timeout must..."; the part after the step name.
std::string_view detail(std::string_view message) {
  if (message.starts_with("step '")) {
    const auto end = message.find("': ");
    if (end != std::string_view::npos) return message.substr(end + 3);
  }
  return message;
}

std::string with_rule(std::string_view message, const std::string& rule) {
  return std::string(message) + " [" + rule + "]";
}

// Checks the saga-level defaults once, at their own clauses, through a probe step using them;
// steps that inherit a bad default then repeat the error at the same place and are dropped.
void check_defaults(const SagaSource& s, Diagnostics& diags) {
  Definition probe;
  probe.name = "probe";
  StepDef step;
  step.name = "probe";
  step.action = {"p", "P"};
  step.compensation = CommandRef{"p", "C"};
  step.timeout = s.default_timeout;
  step.retry = s.default_retry;
  step.compensation_retry = s.default_compensation_retry;
  probe.steps.push_back(step);
  for (const DefinitionError& e : validate(probe)) {
    const std::string_view what = detail(e.message);
    std::optional<Loc> at;
    if (e.rule == "timeout-range") at = s.default_timeout_loc;
    if (e.rule == "retry-policy") {
      at =
          what.starts_with("compensation") ? s.default_compensation_retry_loc : s.default_retry_loc;
    }
    if (at) diags.error(*at, with_rule("default " + std::string(what), e.rule));
  }
}

void check_saga(const SagaSource& s, Diagnostics& diags) {
  check_defaults(s, diags);
  for (const DefinitionError& e : validate(s.def)) {
    if (structural(e.rule) && (e.step < 0 ? s.unsure_from != std::string::npos
                                          : static_cast<std::size_t>(e.step) >= s.unsure_from))
      continue;
    if (s.header_error && (e.rule == "saga-name" || e.rule == "version")) continue;
    Loc at = e.rule == "version" ? s.version : s.name;
    if (e.step >= 0 && static_cast<std::size_t>(e.step) < s.steps.size()) {
      const StepSource& src = s.steps[e.step];
      const StepDef& step = s.def.steps[e.step];
      if (src.had_error && (e.rule == "step-name" || e.rule == "command")) continue;
      if (e.rule == "unique-step-names" && step.name.empty()) continue;
      const bool about_compensation = detail(e.message).starts_with("compensation");
      std::optional<Loc> setting = src.name;
      if (e.rule == "command") setting = about_compensation ? src.compensate : src.command;
      if (e.rule == "compensation-after-pivot") setting = src.compensate;
      if (e.rule == "timeout-range") setting = src.timeout;
      if (e.rule == "retry-policy")
        setting = about_compensation ? src.compensation_retry : src.retry;
      at = setting.value_or(src.name);
    }
    std::string message = e.message;
    if (e.rule == "unique-step-names" && e.step >= 0) {  // where the name was first used
      for (int i = 0; i < e.step && static_cast<std::size_t>(i) < s.steps.size(); ++i)
        if (s.def.steps[i].name == s.def.steps[e.step].name) {
          message += " (first at line " + std::to_string(s.steps[i].name.line) + ")";
          break;
        }
    }
    diags.error(at, with_rule(message, e.rule));
  }
}

}  // namespace

const Definition* ParseResult::find(std::string_view name, int version) const {
  const Definition* best = nullptr;
  for (const Definition& d : definitions) {
    if (d.name != name) continue;
    if (d.version == version) return &d;
    if (version == 0 && (!best || d.version > best->version)) best = &d;
  }
  return best;
}

ParseResult parse(std::string_view text, std::string_view filename) {
  Diagnostics diags(text, filename);
  ParseResult result;
  if (text.size() > kMaxFileBytes) {
    diags.file_error("file is too large (" + std::to_string(text.size()) + " bytes; the limit is " +
                     std::to_string(kMaxFileBytes) + ")");
    result.errors = diags.take();
    return result;
  }
  const std::vector<internal::Token> tokens = internal::lex(text, diags);
  std::vector<SagaSource> sagas = internal::parse_tokens(tokens, diags);
  for (SagaSource& s : sagas) {
    check_saga(s, diags);
    // Only sagas without any error in their text (the lexer's included) are returned.
    if (!s.had_error && !diags.has_error_in(s.begin, s.end))
      result.definitions.push_back(std::move(s.def));
  }
  result.errors = diags.take();
  return result;
}

ParseResult parse_file(const std::string& path) {
  const auto fail = [&](const std::string& message) {
    Diagnostics diags({}, path);
    diags.file_error(message);
    ParseResult r;
    r.errors = diags.take();
    return r;
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return fail("is a directory, not a .saga file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(std::string("cannot read the file: ") + std::strerror(errno));
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) return fail(std::string("cannot read the file: ") + std::strerror(errno));
  if (text.size() > kMaxFileBytes) {
    const auto size = std::filesystem::file_size(path, ec);
    return fail("file is too large (" +
                (ec ? "more than " + std::to_string(kMaxFileBytes) : std::to_string(size)) +
                " bytes; the limit is " + std::to_string(kMaxFileBytes) + ")");
  }
  return parse(text, path);
}

Result<std::vector<Definition>> load_file(const std::string& path) {
  ParseResult r = parse_file(path);
  if (r.ok()) return std::move(r.definitions);
  std::string message = format(r.errors);
  if (!message.empty() && message.back() == '\n') message.pop_back();
  return Status::InvalidArgument(message);
}

}  // namespace saga::dsl

namespace saga::dsl {

std::string print(const Definition& def) {
  return definition_text(def);
}

std::string print(const std::vector<Definition>& defs) {
  std::string out;
  for (std::size_t i = 0; i < defs.size(); ++i) out += (i ? "\n" : "") + print(defs[i]);
  return out;
}

}  // namespace saga::dsl
