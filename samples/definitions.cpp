#include "definitions.hpp"

#include "saga/dsl.hpp"

namespace saga::samples {

Result<std::vector<Definition>> load_definitions(const std::string& saga_file) {
  return dsl::load_file(saga_file);
}

}  // namespace saga::samples
