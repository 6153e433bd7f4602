#pragma once

#include <cstdint>

namespace fleettwin::ml {

/// Hysteresis rules of one car's alert: raise after `raise_k` anomalous events among the last `window_n`,
/// clear after `clear_m` normal events in a row. No alert storms: while raised nothing new is raised.
struct HysteresisRule {
  /// 2 of the last 3: about 10 s quicker than 3 of 5 on every seed measured, with F1 the same or higher,
  /// once the threshold is calibrated for the rule (docs/benchmarks.md).
  int raise_k = 2;
  int window_n = 3;  ///< at most 64
  /// Long on purpose: several failures show only in some driving states (a drive shaft at speed, an
  /// overheating engine while it runs), and a car that parks for a while is not repaired.
  int clear_m = 180;
};

/// What one event did to an alert.
enum class Transition : uint8_t { kNone, kRaised, kCleared };

/// Alert state of one car for one kind, applying a HysteresisRule event by event. Plain value; owned by
/// the thread that owns the car's stream.
class AlertTracker {
 public:
  Transition update(bool anomalous, const HysteresisRule& rule);
  bool active() const { return _active; }
  int64_t raised_ts = 0;  ///< ts of the event that raised the current alert (its id)

 private:
  uint64_t _recent = 0;  // bit i: event i steps back was anomalous
  int _normal_streak = 0;
  bool _active = false;
};

/// The outdated-firmware rule (a rule, not a learned anomaly): the fleet's current version is the highest
/// any car has reported; a car is outdated when it reports a version below its own earlier one (a
/// rollback), or has stayed below the fleet's current version for longer than `grace_ms` (cars install a
/// release on their own schedule, so a short lag is normal). Plain value per car, plus one fleet-wide
/// `FirmwareFleet`; single thread.
struct FirmwareFleet {
  int64_t current = 0;
  int64_t current_since = 0;  ///< ts of the first event that reported `current`
  int64_t grace_ms = 3'600'000;
};
class FirmwareCar {
 public:
  /// Feeds one event; true while the car counts as outdated.
  bool update(int64_t version, int64_t ts, FirmwareFleet& fleet);

 private:
  int64_t _highest = -1;
  int64_t _behind_since = -1;
};

}  // namespace fleettwin::ml
