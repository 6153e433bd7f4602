// Aggregate definitions (src/aggregate/definition.h parse_yaml): the configuration's aggregates. Anything
// that is not valid is a DefinitionError; valid definitions satisfy the bounds the engine relies on, and an
// engine runs them over a few events.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "aggregate/definition.h"
#include "aggregate/engine.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const auto catalog = catalog::builtin();
  try {
    auto defs = aggregate::parse_yaml(text, "fuzz.yaml", *catalog);
    FUZZ_CHECK(defs.size() <= aggregate::kMaxDefinitions, std::string(text));
    for (const auto& d : defs) {
      FUZZ_CHECK(d.advance_ms > 0 && d.size_ms % d.advance_ms == 0 &&
                     d.size_ms / d.advance_ms <= aggregate::kMaxWindowsPerEvent &&
                     d.grace_ms <= d.allowed_lateness_ms,
                 d.name);
    }
    aggregate::Engine engine(std::move(defs));
    const std::vector<std::string_view> attributes(engine.attributes().size(), "x");
    core::Telemetry t;
    t.car = "c";
    t.values.assign(catalog->size(), 1.0);
    for (int64_t i = 1; i <= 3; ++i) {
      t.seq = i;
      t.ts = 1'764'144'000'000 + (i % 2) * 86'400'000;
      engine.add(t, attributes);
    }
    (void)engine.flush();
  } catch (const aggregate::DefinitionError&) {
  }
  return 0;
}
