// The command lines of the project's programs: each has --version, and ends 0 after --help or
// --version and 2 on a usage error (not CLI11's own codes, 100 and up).
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace saga::apps {

inline void add_version(CLI::App& app, const std::string& program) {
  app.set_version_flag("--version", program + " " + SAGA_VERSION);
}

// Parses argv; returns the exit code when the program should end now (help, version, usage
// error: the message is printed).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

}  // namespace saga::apps
