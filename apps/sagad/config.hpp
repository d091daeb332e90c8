// sagad's configuration: a TOML file (sagad.example.toml documents every key), then flags that
// override it. The bearer token is read from a file or the environment, never from argv.
#pragma once

#include <map>
#include <string>

#include "saga/status.hpp"

namespace sagad {

struct Config {
  std::string definitions;  // a .saga file or a directory of them
  std::string db = "sagad.db";
  std::string transport = "memory";  // memory | kafka
  // With the memory transport, which participants run in-process: the samples' (each with its
  // own SQLite database), the reference workload's (in-memory, for saga-bench --mode http) or
  // none.
  std::string participants = "samples";
  std::string http = "127.0.0.1:8080";
  int partitions = 1;
  std::string log_level = "info";   // trace debug info warn error
  std::string log_format = "text";  // text | json
  std::string token_file;           // bearer token for POST endpoints (or SAGAD_TOKEN)
  size_t max_body_bytes = 1 << 20;
  int max_wait_ms = 60'000;                  // the longest ?wait= a start may ask for
  std::map<std::string, std::string> kafka;  // librdkafka properties
  // With the kafka transport: the topic start requests come from and the one outcomes go to
  // (empty: none). Names with a dot are topic names as they are.
  std::string requests_topic = "sagad.requests";
  std::string outcomes_topic = "sagad.outcomes";

  std::string token;  // resolved from token_file or SAGAD_TOKEN; never printed
};

// Reads `path` into `config` (keys it does not set keep their value). Unknown keys and values of
// the wrong type are errors naming the key (and the line).
saga::Status load_toml(const std::string& path, Config* config);

// Checks values and resolves the token. Errors name the setting.
saga::Status finish(Config* config);

// "127.0.0.1:8080" -> host, port. Port 0 asks for any free port.
saga::Status split_address(const std::string& address, std::string* host, int* port);

}  // namespace sagad
