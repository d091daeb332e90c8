// Loads the sample saga definitions from a .saga file.
#pragma once

#include <string>
#include <vector>

#include "saga/definition.hpp"

namespace saga::samples {
Result<std::vector<Definition>> load_definitions(const std::string& saga_file);
}
