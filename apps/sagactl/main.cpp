// sagactl: validate and draw saga definitions; inspect saga logs.
#include <CLI/CLI.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"sagactl: check and draw .saga definitions, inspect saga logs", "sagactl"};
  app.require_subcommand(1);
  sagactl::add_dsl_commands(app);
  sagactl::add_log_commands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
