// The registry's Avro schema parser (src/registry/schema.h AvroSchema::parse): every schema a client
// registers. A schema's canonical text is a schema with the same canonical text.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "registry/schema.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  std::string canonical;
  try {
    canonical = registry::AvroSchema::parse(json).canonical();
  } catch (const std::invalid_argument&) {
    return 0;
  }
  try {
    const registry::AvroSchema again = registry::AvroSchema::parse(canonical);
    FUZZ_CHECK(again.canonical() == canonical, canonical + " -> " + again.canonical());
    // A schema reads its own data.
    FUZZ_CHECK(registry::avro_read_problems(again, again).empty(), canonical);
  } catch (const std::invalid_argument& e) {
    FUZZ_CHECK(false, canonical + ": " + e.what());
  }
  return 0;
}
