#include "registry/telemetry_reader.h"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "codec/avro.h"
#include "registry/client.h"
#include "registry/protocol.h"
#include "registry/schema.h"
#include "registry/telemetry_plan.h"

namespace fleettwin::registry {

namespace {

// The built-in catalog's codec is built once per process; another catalog's once per reader.
std::shared_ptr<const codec::TelemetryAvro> codec_for(const std::shared_ptr<const catalog::Catalog>& c) {
  if (c == catalog::builtin() || *c == *catalog::builtin())
    return {std::shared_ptr<const void>{}, &codec::builtin_telemetry_avro()};
  return std::make_shared<const codec::TelemetryAvro>(c);
}

}  // namespace

TelemetryReader::TelemetryReader(std::shared_ptr<SchemaRegistryClient> registry,
                                 std::shared_ptr<const catalog::Catalog> catalog)
    : _registry(std::move(registry)), _own(codec_for(catalog)) {
  if (!_registry) return;
  _own_canonical = AvroSchema::parse(_own->schema()).canonical();
  _keys = std::make_shared<const SignalKeys>(std::move(catalog));
}

TelemetryReader::~TelemetryReader() = default;
TelemetryReader::TelemetryReader(TelemetryReader&&) noexcept = default;
TelemetryReader& TelemetryReader::operator=(TelemetryReader&&) noexcept = default;

const catalog::Catalog& TelemetryReader::catalog() const { return _own->catalog(); }

void TelemetryReader::refuse(int32_t id, std::string reason, std::string* error, bool unknown) {
  if (error) *error = reason;
  // Ids come from records: a writer inventing ids must not grow this without bound (forgetting only costs a
  // lookup).
  if (_refused.size() >= 4096 && !_refused.contains(id)) _refused.clear();
  auto& r = _refused[id];
  if (unknown) {
    // Doubling from kRetryUnknownFirst: a registry restored a moment later is believed within seconds, one
    // that stays empty is asked about twice a minute at most.
    const std::chrono::milliseconds max = kRetryRefusedAfter;
    r.wait = r.wait.count() == 0 ? std::chrono::milliseconds(kRetryUnknownFirst) : std::min(r.wait * 2, max);
  } else {
    r.wait = kRetryRefusedAfter;
  }
  r.reason = std::move(reason);
  r.retry_at = _now() + r.wait;
}

bool TelemetryReader::plan_for(int32_t id, const TelemetryPlan*& plan, std::string* error) {
  if (const auto it = _plans.find(id); it != _plans.end()) {
    plan = it->second.get();
    return true;
  }
  if (const auto it = _refused.find(id); it != _refused.end() && _now() < it->second.retry_at) {
    if (error) *error = it->second.reason;
    return false;
  }
  const std::string prefix = "schema id " + std::to_string(id);
  std::optional<AvroSchema> writer;
  try {
    writer = AvroSchema::parse(_registry->get_schema(id));
  } catch (const SchemaRegistryError& e) {
    // Unreachable or failing registry: the record is fine, the lookup is not. Throwing stops the stage
    // without committing, so nothing is skipped; an id the registry does not know is the writer's fault.
    if (e.status() == 0 || e.status() >= 500) throw;
    refuse(id, prefix + ": " + e.what(), error, e.status() == 404);
    return false;
  } catch (const std::invalid_argument& e) {
    refuse(id, prefix + " is not a valid Avro schema: " + e.what(), error);
    return false;
  }
  std::shared_ptr<const TelemetryPlan> made;
  if (writer->canonical() != _own_canonical) {
    try {
      made = std::make_shared<const TelemetryPlan>(*writer, _keys);
    } catch (const std::invalid_argument& e) {
      refuse(id, prefix + " cannot be read as CarTelemetry of catalog " + catalog().label() + ": " + e.what(),
             error);
      return false;
    }
  }
  plan = made.get();
  _plans.emplace(id, std::move(made));
  _refused.erase(id);
  return true;
}

bool TelemetryReader::read(std::string_view record, core::Telemetry& out, std::string* error) {
  _schema_refused = false;
  int32_t id = 0;
  std::string_view body;
  if (!_registry || !codec::read_confluent_header(record, id, body) || id == _last_own)
    return _own->decode(record, out, nullptr, error);
  const TelemetryPlan* plan = nullptr;
  if (!plan_for(id, plan, error)) {
    _schema_refused = true;
    return false;
  }
  if (plan == nullptr) {
    _last_own = id;
    return _own->decode(record, out, nullptr, error);
  }
  if (plan->decode(body, out, error)) return true;
  if (error) *error = "schema id " + std::to_string(id) + ": " + *error;
  return false;
}

}  // namespace fleettwin::registry
