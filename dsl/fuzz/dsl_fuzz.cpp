// Fuzzes parse(): no crash, hang or sanitizer report on any input, and these properties:
// at most kMaxErrors + 1 diagnostics; every returned Definition is valid, draws, and reads
// back from its printed text unchanged.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "saga/dsl.hpp"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace saga::dsl;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ParseResult r = parse(text, "fuzz.saga");
  require(r.errors.size() <= static_cast<size_t>(kMaxErrors) + 1);
  for (const Diagnostic& d : r.errors) require(!format(d).empty());
  for (const saga::Definition& def : r.definitions) {
    require(saga::validate(def).empty());
    require(!to_dot(def).empty() && !to_mermaid(def).empty());
    const ParseResult again = parse(print(def), "printed.saga");
    require(again.ok() && again.definitions.size() == 1 && again.definitions[0] == def);
  }
  return 0;
}
