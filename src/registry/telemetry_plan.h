#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "catalog/catalog.h"
#include "core/telemetry.h"
#include "registry/schema.h"

namespace fleettwin::registry {

/// The names under which a reader catalog's signals may appear in a writer's CarTelemetry schema: each
/// signal's name, field, aliases and the identifier form of each (what TelemetryAvro writes as Avro field
/// names and aliases). Immutable; any thread.
class SignalKeys {
 public:
  explicit SignalKeys(std::shared_ptr<const catalog::Catalog> catalog);
  std::optional<std::size_t> find(std::string_view key) const;
  const catalog::Catalog& catalog() const { return *_catalog; }

  /// Transparent: a string_view is looked up without building a string.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Index = std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>>;

 private:
  std::shared_ptr<const catalog::Catalog> _catalog;
  Index _index;
};

/// How to read CarTelemetry records written with one writer schema into a reader catalog's Telemetry, worked
/// out once per writer schema (Avro "Schema Resolution"): each writer field is matched to the envelope
/// (car, ts, seq, lat, lon, flags) or to the reader signal with the same name, field or alias (the writer
/// field's Avro aliases count too); int, long, float and double promote to a double signal, int to a long
/// one, null union branches read as absent; writer fields the reader lacks are skipped whatever their type;
/// reader signals the writer lacks stay absent; flags are mapped by writer field name, unknown ones ignored.
/// Immutable; any thread.
class TelemetryPlan {
 public:
  /// Throws std::invalid_argument naming the field and the reason when records written with `writer` cannot
  /// be read: not a CarTelemetry record, car, ts or seq missing, or a matched field of a type the reader's
  /// cannot take.
  TelemetryPlan(const AvroSchema& writer, std::shared_ptr<const SignalKeys> keys);

  /// Decodes one Avro body (without the Confluent header). False with `error` set on truncated or malformed
  /// input or trailing bytes; `t` is partly written then.
  bool decode(std::string_view body, core::Telemetry& t, std::string* error) const;

 private:
  struct Step {
    const AvroNode* type;  ///< the writer's type of the field
    int target;            ///< a reader signal index, or one of the envelope targets (telemetry_plan.cc)
    std::string field;     ///< the writer's field name, for errors
  };
  void add_field(const AvroNode::Field& f, std::vector<bool>& taken);

  std::shared_ptr<const SignalKeys> _keys;
  AvroSchema _writer;  ///< owns the nodes the steps point to
  std::vector<Step> _steps;
  SignalKeys::Index _flag_targets;  ///< writer field -> reader signal
};

}  // namespace fleettwin::registry
