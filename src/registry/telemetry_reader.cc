#include "registry/telemetry_reader.h"

#include "codec/avro.h"
#include "registry/client.h"
#include "registry/protocol.h"
#include "registry/schema.h"

namespace fleettwin::registry {

TelemetryReader::TelemetryReader(std::shared_ptr<SchemaRegistryClient> registry)
    : _registry(std::move(registry)) {}

bool TelemetryReader::check_schema(int32_t id, std::string* error) {
  if (_readable.count(id)) return true;
  if (_refused.count(id)) {
    if (error)
      *error = "schema id " + std::to_string(id) + " is not the CarTelemetry schema this build reads";
    return false;
  }
  try {
    static const std::string kOurs = AvroSchema::parse(codec::car_telemetry_schema()).canonical();
    const std::string theirs = AvroSchema::parse(_registry->get_schema(id)).canonical();
    if (theirs == kOurs) {
      _readable.insert(id);
      return true;
    }
    _refused.insert(id);
    if (error)
      *error = "schema id " + std::to_string(id) + " is not the CarTelemetry schema this build reads";
  } catch (const SchemaRegistryError& e) {
    // Unreachable or failing registry: the record is fine, the lookup is not. Throwing stops the stage
    // without committing, so nothing is skipped; an id the registry does not know is the writer's fault.
    if (e.status() == 0 || e.status() >= 500) throw;
    _refused.insert(id);
    if (error) *error = "schema id " + std::to_string(id) + ": " + e.what();
  } catch (const std::invalid_argument& e) {
    _refused.insert(id);
    if (error) *error = "schema id " + std::to_string(id) + " is not a valid Avro schema: " + e.what();
  }
  return false;
}

bool TelemetryReader::read(std::string_view record, core::Telemetry& out, std::string* error) {
  int32_t id = 0;
  if (!codec::decode_avro_telemetry(record, out, &id, error)) return false;
  if (!_registry || id == _last_ok) return true;
  if (!check_schema(id, error)) return false;
  _last_ok = id;
  return true;
}

}  // namespace fleettwin::registry
