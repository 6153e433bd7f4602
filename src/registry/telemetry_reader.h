#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

#include "core/telemetry.h"

namespace fleettwin::registry {

class SchemaRegistryClient;

/// Reads Avro CarTelemetry records (Confluent wire format) the way a consumer should: by the schema id each
/// record carries. The first record with a new id fetches that writer schema from the registry and checks it
/// is the CarTelemetry schema this build reads; later records with a known id cost one hash lookup. A writer
/// schema of another shape is refused with a clear reason rather than misread (resolving other versions is
/// left to a later version of this reader). Without a registry (the embedded mode, where this process
/// registered the schema itself) every id is trusted. Used by one stage thread; the client it shares is
/// thread-safe.
class TelemetryReader {
 public:
  explicit TelemetryReader(std::shared_ptr<SchemaRegistryClient> registry = nullptr);
  /// Decodes `record` into `out`; false with `error` set when the bytes or the writer schema are not
  /// readable. Throws SchemaRegistryError when the registry cannot be asked (the record may be fine: do not
  /// skip it).
  bool read(std::string_view record, core::Telemetry& out, std::string* error);

 private:
  bool check_schema(int32_t id, std::string* error);

  std::shared_ptr<SchemaRegistryClient> _registry;
  std::unordered_set<int32_t> _readable;
  std::unordered_set<int32_t> _refused;
  int32_t _last_ok = -1;  // fast path: consecutive records almost always share one id
};

}  // namespace fleettwin::registry
