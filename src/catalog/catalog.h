#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/signals.h"

namespace fleettwin::catalog {

/// The part of the car a signal belongs to: alerts and explanations name parts, not only signals.
enum class Part : uint8_t { kCooling, kBattery, kDrivetrain, kTyres, kChassis, kElectronics, kBody };
std::string_view to_string(Part p);
std::optional<Part> part_from_string(std::string_view s);
/// "double", "int" or "bool", as catalog files, the Avro schema's documentation and the API write it.
std::string_view to_string(core::SignalType t);

/// One signal of a catalog. Plain value.
struct SignalSpec {
  std::string name;  ///< as operators write it: "coolant_temp" or a VSS path "Vehicle.Speed"
  /// The identifier form of the name ([A-Za-z_][A-Za-z0-9_]*: every other character becomes '_'), used where
  /// a dot is not allowed or means something else: Avro field names, SQLite columns, MongoDB keys.
  std::string field;
  core::SignalType type = core::SignalType::kDouble;
  std::string unit;
  double min = 0;  ///< plausible range: a reading outside it is kept and flagged out of range
  double max = 0;
  std::string description;
  Part part = Part::kElectronics;
  std::vector<std::string> aliases;  ///< other payload field names that mean this signal
  int since = 1;                     ///< catalog version that added the signal (older firmware lacks it)

  bool in_range(double v) const { return v >= min && v <= max; }
  bool operator==(const SignalSpec&) const = default;
};

/// A catalog that cannot be used, with where and why ("signals[3].min: ...").
class CatalogError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Limits that keep a catalog (an operator's file, but still outside input) from costing unbounded memory or
/// time in the per-message paths that index it.
inline constexpr std::size_t kMaxSignals = 1024;
inline constexpr std::size_t kMaxNameLength = 128;
inline constexpr std::size_t kMaxAliases = 16;

/// The signal catalog: which signals cars send, under which names, with which types, units, plausible
/// ranges and parts. Everything that used to be compiled in (the JSON decoder, the Avro schema, the stores'
/// history, the model's inputs, the dashboard's car page) reads it from here. Built once at start-up and
/// immutable afterwards, so it is shared between threads by `std::shared_ptr<const Catalog>` without locks.
class Catalog {
 public:
  /// Validates and indexes `signals` (CatalogError on a bad name, type, range, a duplicate or clashing name,
  /// alias or field, or a reserved name such as "car").
  Catalog(std::string name, int version, std::string description, std::vector<SignalSpec> signals);

  const std::string& name() const { return _name; }
  int version() const { return _version; }
  const std::string& description() const { return _description; }
  const std::vector<SignalSpec>& signals() const { return _signals; }
  std::size_t size() const { return _signals.size(); }
  const SignalSpec& operator[](std::size_t i) const { return _signals[i]; }

  /// Index of the signal whose name, field or alias is `key` (what a payload may use), or nullopt.
  std::optional<std::size_t> find(std::string_view key) const;
  /// Index of the signal whose name is exactly `name`; CatalogError naming the catalog otherwise. For code
  /// that needs a signal the catalog must have.
  std::size_t index_of(std::string_view name) const;

  /// The signals a car on firmware `version` sends: those with `since <= version`, in catalog order.
  std::vector<std::size_t> signals_as_of(int version) const;
  /// "cardata v1".
  std::string label() const;

  bool operator==(const Catalog& o) const {
    return _name == o._name && _version == o._version && _signals == o._signals;
  }

 private:
  std::string _name;
  int _version;
  std::string _description;
  std::vector<SignalSpec> _signals;
  // Transparent, so find() looks a string_view up without building a string.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::size_t, KeyHash, std::equal_to<>> _by_key;  ///< name, field, aliases
};

/// The identifier form of a signal name (SignalSpec::field).
std::string field_name(std::string_view name);

/// Names a signal may not take: the telemetry envelope's fields and what the stores add beside signals.
bool reserved_name(std::string_view name);

/// The built-in catalog, cardata-v1 (compiled in from deploy/catalogs/cardata-v1.yaml). Any thread.
std::shared_ptr<const Catalog> builtin();

/// Parses a catalog from YAML text (docs/catalogs.md); `origin` names the source in errors. CatalogError
/// when the text is not a valid catalog.
Catalog parse_yaml(std::string_view text, std::string_view origin);
/// Reads and parses a catalog file; CatalogError when it cannot be read or is not valid.
Catalog load_file(const std::string& path);
/// The catalog at `path`, or the built-in one when `path` is empty.
std::shared_ptr<const Catalog> load_or_builtin(const std::string& path);
/// The catalog as YAML, in the format parse_yaml reads (parse_yaml(to_yaml(c)) == c).
std::string to_yaml(const Catalog& c);

}  // namespace fleettwin::catalog
