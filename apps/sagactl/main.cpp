// sagactl: validate and draw saga definitions; inspect saga logs.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"sagactl: check and draw .saga definitions, inspect saga logs", "sagactl"};
  saga::apps::add_version(app, "sagactl");
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 success, 1 failure, 2 usage error, 3 replay --check found a log the "
      "state machine decides differently.");
  sagactl::add_dsl_commands(app);
  sagactl::add_log_commands(app);
  sagactl::add_server_commands(app);
  for (CLI::App* command : app.get_subcommands({})) saga::apps::add_version(*command, "sagactl");
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {  // a command failed and said why
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, the version, or the usage error
    return rc == 0 ? 0 : sagactl::kExitUsage;
  } catch (const std::exception& e) {  // e.g. a server address the HTTP client refuses
    std::cerr << "sagactl: " << e.what() << "\n";
    return sagactl::kExitFailure;
  }
  return 0;
}
