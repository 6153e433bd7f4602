// The registry's compatibility check (src/registry/schema.h avro_read_problems) on two schemas from a
// client: the input is the reader schema, a NUL byte, then the writer schema.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "fuzz_check.h"
#include "registry/schema.h"

using namespace fleettwin;

namespace {

std::optional<registry::AvroSchema> parse(std::string_view json) {
  try {
    return registry::AvroSchema::parse(json);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = in.find('\0');
  if (nul == std::string_view::npos) return 0;
  const auto reader = parse(in.substr(0, nul));
  if (!reader) return 0;
  const auto writer = parse(in.substr(nul + 1));
  if (!writer) return 0;
  const auto problems = registry::avro_read_problems(*reader, *writer);
  for (const auto& p : problems) FUZZ_CHECK(!p.empty(), "an empty problem");
  (void)registry::avro_read_problems(*writer, *reader);
  // Identical schemas are always compatible.
  if (reader->canonical() == writer->canonical()) FUZZ_CHECK(problems.empty(), reader->canonical());
  return 0;
}
