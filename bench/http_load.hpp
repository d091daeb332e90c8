// saga-bench --mode http: the reference workload driven through a running sagad's HTTP API.
#pragma once

#include <string>

namespace sagabench {

// Prints the JSON line; returns the exit code (0 when every saga ended as it should).
int run_http(const std::string& url, const std::string& run, int sagas, int inflight);

}  // namespace sagabench
