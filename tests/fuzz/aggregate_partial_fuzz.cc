// A group window's partial (src/aggregate/partial_codec.h, Engine::combine): every record of
// fleet.aggregates.partials, read by the copy of the aggregate stage that merges the group. An accepted
// partial encodes back to the same fields, merges, and the merge emits; the same bytes as a source's saved
// group windows (Engine::restore_source) are refused or save back to bytes that restore again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "aggregate/definition.h"
#include "aggregate/engine.h"
#include "aggregate/partial_codec.h"
#include "fuzz_check.h"

using namespace fleettwin;

namespace {
constexpr const char* kDefinitions = R"(aggregates:
  - {name: fleet_1m, group: fleet, window: 1m, grace: 5s, signals: {speed: [max, p95, last]}}
  - {name: by_site, group: attribute, attribute: site, window: {size: 2m, advance: 1m}, signals: {speed: [mean]}}
)";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  static const auto catalog = catalog::builtin();
  static const auto defs = aggregate::parse_yaml(kDefinitions, "fuzz.yaml", *catalog);
  aggregate::EngineOptions options;
  options.combine_own_partials = false;
  aggregate::Engine engine(defs, options);
  std::string error;
  aggregate::Partial p;
  if (aggregate::decode_partial(in, p, &error)) {
    // Varints may be written longer than needed: the fields, not the bytes, come back the same.
    aggregate::Partial again;
    FUZZ_CHECK(aggregate::decode_partial(aggregate::encode_partial(p), again, &error), error);
    FUZZ_CHECK(again.aggregate == p.aggregate && again.group == p.group && again.source == p.source &&
                   again.event_time == p.event_time && again.window_start == p.window_start &&
                   again.count == p.count && again.window == p.window,
               "decode(encode(p)) != p");
    if (engine.combine(p, &error)) {
      aggregate::Partial later = p;
      later.event_time = aggregate::kMaxEventTime;  // closes (and drops) every window of the group
      engine.combine(later, &error);
      for (const auto& r : engine.flush()) FUZZ_CHECK(r.count > 0 && r.revision > 0, "an empty merge");
    }
  }
  if (engine.restore_source(3, in, &error)) {
    const std::string saved = engine.save_source(3);
    aggregate::Engine other(defs, options);
    FUZZ_CHECK(other.restore_source(3, saved, &error), error);
    other.touch_source(3);
    other.flush();
    for (const auto& q : other.take_partials()) FUZZ_CHECK(engine.combine(q, &error), error);
  }
  return 0;
}
