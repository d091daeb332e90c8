// Fuzzes the message envelope: decode_json never crashes or throws on any bytes, and what it
// accepts encodes without throwing and decodes back to the same message.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "saga/transport.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto m = saga::decode_json(text);
  if (!m.ok()) return 0;
  const std::string again = saga::encode_json(*m);
  auto back = saga::decode_json(again);
  if (!back.ok() || !(*back == *m)) std::abort();
  return 0;
}
