// sagactl validate FILE...   and   sagactl graph FILE [--saga NAME] [--format dot|mermaid]
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "saga/dsl.hpp"

namespace sagactl {

namespace {

std::string plural(std::size_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// Diagnostics as text, coloured when stderr is a terminal (and NO_COLOR is unset).
std::string shown(const std::vector<saga::dsl::Diagnostic>& errors) {
  std::string text = saga::dsl::format(errors);
  if (!isatty(STDERR_FILENO) || std::getenv("NO_COLOR") != nullptr) return text;
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (const auto at = line.find(": error: "); at != std::string::npos) {
      line = "\x1b[1m" + line.substr(0, at + 1) + "\x1b[0m \x1b[1;31merror:\x1b[0m" +
             line.substr(at + 8);
    } else if (line.find_first_not_of(" ^~") == std::string::npos &&
               line.find('^') != std::string::npos) {
      line = "\x1b[1;32m" + line + "\x1b[0m";
    }
    out += line + "\n";
  }
  return out;
}

// Prints the diagnostics of a failed file to stderr and stops with exit code 1.
[[noreturn]] void fail_with(const std::string& file, const saga::dsl::ParseResult& r) {
  std::cerr << shown(r.errors) << file << ": " << plural(r.errors.size(), "error") << "\n";
  throw CLI::RuntimeError(1);
}

void run_validate(const std::vector<std::string>& files) {
  bool failed = false;
  for (const std::string& file : files) {
    const saga::dsl::ParseResult r = saga::dsl::parse_file(file);
    if (r.ok() && r.definitions.empty()) {  // an empty or all-comment file is a mistake
      failed = true;
      std::cerr << file
                << ": error: no saga in it (a file holds one or more 'saga Name { ... }')\n";
      continue;
    }
    if (r.ok()) {
      std::cout << file << ": ok (" << plural(r.definitions.size(), "saga") << ")\n";
      continue;
    }
    failed = true;
    std::cerr << shown(r.errors) << file << ": " << plural(r.errors.size(), "error") << "\n";
  }
  if (failed) throw CLI::RuntimeError(1);
}

struct GraphOptions {
  std::string file;
  std::string saga;
  int version = 0;
  std::string format = "dot";
};

void run_graph(const GraphOptions& o) {
  const saga::dsl::ParseResult r = saga::dsl::parse_file(o.file);
  if (!r.ok()) fail_with(o.file, r);
  std::string names;
  for (const saga::Definition& d : r.definitions)
    names += (names.empty() ? "" : ", ") + d.name + " v" + std::to_string(d.version);
  const saga::Definition* def = nullptr;
  if (!o.saga.empty()) {
    def = r.find(o.saga, o.version);
    if (!def) {
      std::cerr << o.file << ": error: no saga '" << o.saga << "'"
                << (o.version ? " version " + std::to_string(o.version) : "") << " (the file has "
                << (names.empty() ? "none" : names) << ")\n";
      throw CLI::RuntimeError(1);
    }
  } else {
    for (const saga::Definition& d : r.definitions) {
      if (d.name != r.definitions.front().name) {
        std::cerr << o.file << ": error: the file has several sagas (" << names
                  << "); choose one with --saga NAME\n";
        throw CLI::RuntimeError(1);
      }
    }
    if (!r.definitions.empty()) def = r.find(r.definitions.front().name, o.version);
    if (!def) {
      std::cerr << o.file << ": error: "
                << (r.definitions.empty() ? "the file has no saga" : "no saga with that version")
                << "\n";
      throw CLI::RuntimeError(1);
    }
  }
  std::cout << (o.format == "mermaid" ? saga::dsl::to_mermaid(*def) : saga::dsl::to_dot(*def));
}

}  // namespace

void add_dsl_commands(CLI::App& app) {
  auto files = std::make_shared<std::vector<std::string>>();
  CLI::App* validate = app.add_subcommand(
      "validate", "Check .saga files; print every error as file:line:column with the source line");
  validate->add_option("FILE", *files, ".saga files to check")->required();
  validate->footer("Prints 'FILE: ok (N sagas)' per valid file; exits 1 if any file has an error.");
  validate->callback([files] { run_validate(*files); });

  auto graph_opts = std::make_shared<GraphOptions>();
  CLI::App* graph = app.add_subcommand(
      "graph", "Draw a saga: steps in order, parallel blocks, compensations, the pivot");
  graph->add_option("FILE", graph_opts->file, "the .saga file")->required();
  graph->add_option("--saga", graph_opts->saga,
                    "the saga to draw when the file has several (default: the only one)");
  graph
      ->add_option("--saga-version", graph_opts->version,
                   "its version (default: the highest in the file)")
      ->check(CLI::PositiveNumber);
  graph->add_option("--format", graph_opts->format, "dot (Graphviz) or mermaid")
      ->check(CLI::IsMember({"dot", "mermaid"}))
      ->capture_default_str();
  graph->footer("Example: sagactl graph samples/place_order.saga | dot -Tpng -o place_order.png");
  graph->callback([graph_opts] { run_graph(*graph_opts); });
}

}  // namespace sagactl
