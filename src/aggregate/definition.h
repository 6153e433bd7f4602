#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"

namespace fleettwin::aggregate {

/// A definition that is not valid; the message names the source and the field.
class DefinitionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What an aggregate computes of one signal over a window.
enum class Function : uint8_t { kCount, kMin, kMax, kMean, kSum, kP50, kP95, kP99, kLast };
/// "count", "min", ..., "p95", "last": the names the YAML uses and the result columns end with.
std::string_view function_name(Function f);

/// Whose events share a window: each car's own, the whole fleet's, or those of the cars with one value of a
/// twin attribute (site, health status: the caller gives the engine each event's value).
enum class Grouping : uint8_t { kCar, kFleet, kAttribute };

inline constexpr int64_t kMsPerHour = int64_t{3600} * 1000;
inline constexpr int64_t kMsPerDay = 24 * kMsPerHour;
/// The default allowed lateness of per-fleet and per-attribute definitions.
inline constexpr int64_t kDefaultAllowedLateness = 24 * kMsPerHour;
/// Bounds on a definition (an operator's file, still outside input): they keep per-event work and state
/// bounded.
inline constexpr std::size_t kMaxDefinitions = 64;
inline constexpr std::size_t kMaxSignalsPerDefinition = 64;
inline constexpr int64_t kMaxWindowsPerEvent = 64;  ///< size / advance of a hopping window
inline constexpr int64_t kMaxDuration = 400 * kMsPerDay;
inline constexpr int64_t kMaxAllowedLateness = 30 * kMsPerDay;

struct SignalFunctions {
  std::size_t signal = 0;  ///< index in the catalog the definition was read with
  std::string name;        ///< the catalog's name of the signal
  std::vector<Function> functions;
};

/// One aggregate. Windows are aligned on the epoch: they start at multiples of `advance_ms` and cover
/// [start, start + size_ms); tumbling when advance == size. Every result carries the count of events.
struct Definition {
  std::string name;  ///< [a-z0-9_]{1,64}
  Grouping grouping = Grouping::kCar;
  std::string attribute;  ///< the twin attribute, when grouping == kAttribute
  int64_t size_ms = 0;
  int64_t advance_ms = 0;  ///< 1 <= advance <= size, size a multiple of advance, size / advance <= 64
  int64_t grace_ms = 0;    ///< <= allowed_lateness_ms, <= 30 days
  /// How long after its end a closed window is kept for revisions. parse_yaml()'s default: the grace for
  /// per-car definitions (a car's own windows are final when they close: its events come in seq order), 24 h
  /// for per-fleet and per-attribute ones (their late cars revise them).
  int64_t allowed_lateness_ms = kDefaultAllowedLateness;
  std::vector<SignalFunctions> signals;

  bool tumbling() const { return size_ms == advance_ms; }
  /// "<signal>_<function>" for every function of every signal, in the order of Result::values.
  std::vector<std::string> columns() const;
  bool operator==(const Definition&) const = default;
};

/// Reads definitions from YAML (format: the text of default_yaml(), docs/architecture.md "Windows and
/// aggregates (engine)"); signals are looked up in `catalog` by any of their names. `origin` names the
/// source in errors. DefinitionError on anything not valid: unknown keys, bad names, durations or windows,
/// unknown signals or functions, duplicates, more than the bounds above.
std::vector<Definition> parse_yaml(std::string_view text, std::string_view origin,
                                   const catalog::Catalog& catalog);

/// A duration: a whole number of milliseconds, or a whole number with a unit ms, s, m, h, d ("5m", "24h").
/// DefinitionError (naming `field`) when it is not one, is negative, or exceeds kMaxDuration.
int64_t parse_duration(std::string_view text, std::string_view field);

/// The shipped definitions, as YAML: the reference's count of events per car per 5 minutes, and an hourly
/// summary of the main signals per car (cardata-v1 names).
std::string_view default_yaml();
/// default_yaml() read against `catalog`.
std::vector<Definition> defaults(const catalog::Catalog& catalog);

}  // namespace fleettwin::aggregate
