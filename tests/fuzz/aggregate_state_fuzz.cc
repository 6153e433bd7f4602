// A car's saved window state (src/aggregate/engine.h Engine::restore_car): every record of
// fleet.aggregates.state, read by an aggregate stage that takes over a partition. Restored into an engine of
// the shipped definitions; an accepted state saves back to bytes that restore again, and the engine keeps
// counting after it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "aggregate/definition.h"
#include "aggregate/engine.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  static const auto catalog = catalog::builtin();
  aggregate::Engine engine(aggregate::defaults(*catalog));
  std::string error;
  if (!engine.restore_car("c", in, &error)) {
    FUZZ_CHECK(engine.cars() == 0, "a refused state was kept");
    return 0;
  }
  const std::string saved = engine.save_car("c");
  aggregate::Engine other(aggregate::defaults(*catalog));
  FUZZ_CHECK(other.restore_car("c", saved, &error), error);
  FUZZ_CHECK(other.save_car("c") == saved, "save(restore(save(s))) != save(s)");
  core::Telemetry t;
  t.car = "c";
  t.seq = INT64_MAX;
  t.ts = 1'700'000'000'000;
  for (auto& v : t.values) v = 1;
  engine.add(t);
  engine.flush();
  return 0;
}
