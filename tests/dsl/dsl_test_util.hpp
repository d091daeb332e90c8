// Shared helpers for the DSL tests.
#pragma once

#include <string>

#include "saga/definition.hpp"
#include "saga/dsl.hpp"

namespace saga::dsl::test {

std::string read_file(const std::string& path);
std::string source_path(const std::string& relative);  // under the repository root

// The definition samples/place_order.saga must describe (what samples/definitions.cpp built).
Definition place_order();

// Every message of `r` on its own line, for failure output.
std::string messages(const ParseResult& r);

}  // namespace saga::dsl::test
