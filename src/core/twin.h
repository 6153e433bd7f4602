#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/signals.h"
#include "core/telemetry.h"

namespace fleettwin::core {

/// Health classification of a car, set by the score stage.
enum class HealthStatus : uint8_t { kUnknown, kOk, kWarning, kAnomaly };
std::string_view to_string(HealthStatus s);
HealthStatus health_status_from_string(std::string_view s);  ///< unknown strings map to kUnknown
/// The status one anomaly score gives its event: anomaly when its car is in anomaly alert after it (the score
/// stage's hysteresis, AnomalyScore::in_alert), else a score above its threshold is a warning, else ok. The
/// twin stage sets a car's status with it (an open alert read from fleet.alerts holds the car in anomaly
/// too), and the aggregate stage groups events by it (`attribute: status`): one rule for both.
HealthStatus score_status(double score, double threshold, bool in_alert);

/// The model's view of a car (DESIGN.md §4 Twin.health).
struct Health {
  double score = 0;
  double threshold = 0;
  HealthStatus status = HealthStatus::kUnknown;
  int64_t since = 0;  ///< ms; when status last changed
  std::vector<std::string> top_signals;
  std::string model_version;
  bool operator==(const Health&) const = default;
};

/// The live digital twin of one car; same shape in SQLite and MongoDB. Owned by the twin stage's thread;
/// copies travel on fleet.twins.
struct Twin {
  std::string id;       ///< car id
  int64_t version = 0;  ///< increments on every applied change
  Telemetry reported;   ///< last reported state (reported.seq guards every update)
  bool has_reported = false;
  std::map<std::string, std::string> desired;  ///< settings set by commands (name -> JSON value text)
  std::map<std::string, std::string> reported_settings;  ///< settings the car confirmed
  /// Per catalog signal: device time of the message that last carried it (0: never). A car may send any
  /// subset of the catalog, so each signal keeps its own last value, time and out-of-range flag.
  std::vector<int64_t> metadata = std::vector<int64_t>(kSignalCount, 0);
  Health health;
  bool online = false;
  int64_t first_seen = 0;  ///< ms
  int64_t last_seen = 0;   ///< ms, device time of the last message
  int64_t messages = 0;
  double distance_km = 0;
  /// Central (`--sites`): the edge site of the newest event by seq; empty for a car of central's own topics
  /// and everywhere else. The documents carry it only when set.
  std::string site;

  /// Desired keys whose value the car has not yet reported.
  std::vector<std::string> delta() const;
  bool operator==(const Twin&) const = default;
};

/// What the twin stage remembers about a car besides its twin document: the commands not yet answered (to
/// withdraw their settings from `desired` when they fail or expire) and the alerts raised and not yet cleared
/// (the car stays "anomaly" until the last one clears). Carried with the twin on fleet.twins, so whoever
/// owns the car next (the stage after a restart, another twin role after a rebalance) continues from it.
/// Bounded per car; beyond the bounds the oldest entry is forgotten (and counted by the twin stage).
struct TwinPending {
  struct Command {
    std::string id;
    std::map<std::string, std::string> settings;  ///< setting -> JSON value text
    int64_t expires = 0;                          ///< ms; 0 = never
    bool operator==(const Command&) const = default;
  };
  static constexpr std::size_t kMaxCommands = 32;
  static constexpr std::size_t kMaxAlerts = 32;
  std::vector<Command> commands;         ///< oldest first
  std::vector<std::string> open_alerts;  ///< alert ids, oldest first
  bool empty() const { return commands.empty() && open_alerts.empty(); }
  bool operator==(const TwinPending&) const = default;
};

/// Applies one telemetry message to its car's twin. Returns false, changing nothing, when the message is not
/// newer than what the twin holds (t.seq <= reported.seq): replays and reordering never move a twin back.
/// Signals the message carries replace the reported value and its flag; the others keep theirs. The twin's
/// signals take the message's count (a twin follows the catalog of the stage that applies the message).
bool apply_telemetry(Twin& twin, const Telemetry& t);

/// Marks the twin offline when its last message (device time) is older than `now_ms - offline_after_ms`.
/// Returns true when it changed the twin.
bool mark_offline_if_silent(Twin& twin, int64_t now_ms, int64_t offline_after_ms);

/// Great-circle distance in km between two WGS84 points.
double haversine_km(double lat1, double lon1, double lat2, double lon2);

}  // namespace fleettwin::core
