// Fuzzes the snapshot codec: decode_snapshot never crashes, throws or allocates beyond its
// input on any bytes, and what it accepts encodes back to a blob that decodes the same.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "saga/sqlite_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto s = saga::decode_snapshot(bytes);
  if (!s.ok()) return 0;
  auto again = saga::decode_snapshot(saga::encode_snapshot(*s));
  if (!again.ok() || !(*again == *s)) std::abort();
  return 0;
}
