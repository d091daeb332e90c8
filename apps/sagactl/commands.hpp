// Each group of sagactl subcommands lives in its own cmd_*.cpp and registers itself here.
// A subcommand that fails throws CLI::RuntimeError(exit_code) after printing its own message.
#pragma once

#include <CLI/CLI.hpp>

namespace sagactl {

// Exit codes (README "sagactl"): CLI11's own parse errors are folded into kExitUsage.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotDeterministic = 3;

// validate, graph (cmd_dsl.cpp).
void add_dsl_commands(CLI::App& app);

// list, show, replay, export: reading a saga log file (cmd_log.cpp).
void add_log_commands(CLI::App& app);

// retry, abort: acting on a saga through sagad's HTTP API (cmd_server.cpp).
void add_server_commands(CLI::App& app);

}  // namespace sagactl
