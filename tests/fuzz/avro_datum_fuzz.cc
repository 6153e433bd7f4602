// Avro datums read by schema (src/registry/schema.h avro_datum_to_json, src/registry/telemetry_plan.h
// TelemetryPlan::decode): records whose writer schema the registry gave by id. First byte: which writer
// schema; the rest: the Avro body.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "codec/avro.h"
#include "fuzz_check.h"
#include "registry/schema.h"
#include "registry/telemetry_plan.h"

using namespace fleettwin;

namespace {

struct Schemas {
  std::vector<registry::AvroSchema> all;
  std::unique_ptr<registry::TelemetryPlan> plan;  // for all[0], CarTelemetry
  Schemas() {
    all.push_back(registry::AvroSchema::parse(codec::car_telemetry_schema()));
    for (
        const char* text : {
            R"({"type":"record","name":"List","fields":[{"name":"v","type":"long"},)"
            R"({"name":"next","type":["null","List"],"default":null}]})",
            R"({"type":"record","name":"All","namespace":"x","fields":[{"name":"n","type":"null"},)"
            R"({"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"l","type":"long"},)"
            R"({"name":"f","type":"float"},{"name":"d","type":"double"},{"name":"by","type":"bytes"},)"
            R"({"name":"s","type":"string"},{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},)"
            R"({"name":"a","type":{"type":"array","items":["null","string",{"type":"map","values":"int"}]}},)"
            R"({"name":"m","type":{"type":"map","values":{"type":"fixed","name":"F","size":3}}}]})",
            R"(["null","int",{"type":"array","items":"null"},{"type":"map","values":"null"}])",
        }) {
      all.push_back(registry::AvroSchema::parse(text));
    }
    plan = std::make_unique<registry::TelemetryPlan>(
        all[0], std::make_shared<const registry::SignalKeys>(catalog::builtin()));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const Schemas schemas;
  if (size < 1) return 0;
  const std::size_t which = data[0] % schemas.all.size();
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string json, error;
  const bool ok = registry::avro_datum_to_json(schemas.all[which], body, json, &error);
  FUZZ_CHECK(ok || !error.empty(), "a refusal without a reason");
  if (which == 0) {
    core::Telemetry t;
    std::string plan_error;
    const bool plan_ok = schemas.plan->decode(body, t, &plan_error);
    // The generic reader and the plan agree on what is a well-formed CarTelemetry record (the plan also
    // refuses ranges and car ids, so only one direction holds).
    if (plan_ok) FUZZ_CHECK(ok, "the plan read a record the generic reader refuses: " + error);
  }
  return 0;
}
