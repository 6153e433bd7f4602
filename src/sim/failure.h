#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleettwin::sim {

/// A labelled failure the simulator can inject into a car. The names are stable: they appear in ground
/// truth files and in evaluation reports, so never rename one.
enum class FailureMode : uint8_t {
  kTyrePressureLoss = 0,    ///< one tyre loses pressure (~17 psi at full)
  kShockAbsorberFailure,    ///< one corner's accelerometer amplitude grows (x4 at full)
  kDriveShaftDegradation,   ///< engine vibration rises relative to speed
  kCoolantOverheating,      ///< coolant runs ~40 °C hotter while the engine runs
  kBatteryCellDegradation,  ///< pack voltage sags, state of charge drops faster
  kOutdatedFirmware,        ///< firmware stops updating, then rolls back to an older version
};

inline constexpr std::size_t kFailureModeCount = 6;
inline constexpr std::array<FailureMode, kFailureModeCount> kFailureModes{
    FailureMode::kTyrePressureLoss,       FailureMode::kShockAbsorberFailure,
    FailureMode::kDriveShaftDegradation,  FailureMode::kCoolantOverheating,
    FailureMode::kBatteryCellDegradation, FailureMode::kOutdatedFirmware,
};

/// Stable name, e.g. "tyre_pressure_loss".
std::string_view to_string(FailureMode mode);
/// Inverse of to_string; nullopt for an unknown name.
std::optional<FailureMode> failure_mode_from_string(std::string_view name);

/// Ground truth of one injected failure: when it began (invisible) and when its signature was complete.
/// Plain value. Never part of telemetry; evaluation joins it with scores/alerts by car and time.
struct GroundTruth {
  std::string car;
  FailureMode mode = FailureMode::kTyrePressureLoss;
  int64_t onset_ts = 0;  ///< ms since the epoch, same time base as Telemetry::ts
  int64_t full_ts = 0;   ///< onset_ts + ramp
  bool operator==(const GroundTruth&) const = default;
};

/// One JSON object without a trailing newline: {"car":"car-00001","mode":"...","onset_ts":1,"full_ts":2}.
std::string to_json_line(const GroundTruth& g);
/// Writes each record as one JSON line (JSON Lines).
void write_ground_truth(std::ostream& out, const std::vector<GroundTruth>& records);

/// Parses one JSON line. Keys may come in any order; unknown keys are ignored. On failure returns false
/// and says why in `*error` (when not null).
bool parse_ground_truth_line(std::string_view line, GroundTruth& out, std::string* error = nullptr);

/// Reads a JSON Lines file of ground truth; blank lines are skipped. On the first bad line returns
/// false with "line N: reason" in `*error`, leaving the records read so far in `out`.
bool read_ground_truth(std::istream& in, std::vector<GroundTruth>& out, std::string* error = nullptr);

}  // namespace fleettwin::sim
