#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "catalog/catalog.h"
#include "core/signals.h"

namespace fleettwin::sim {

/// What a car remembers for the signals the simulator does not model (SignalMap): its odometer, tyre and
/// cabin temperatures. Plain value, one per car.
struct ExtraSignalState {
  bool started = false;
  double odometer_km = 0;
  std::array<double, 4> tyre_temp{};
  double cabin_temp = 0;
};

/// Puts a simulated car's cardata-v1 values under the signals of any catalog (`sim.catalog`): each cardata
/// signal goes to the catalog signal of that name or alias (catalog::Catalog::find), a cardata signal the
/// catalog lacks is not sent. Cars on newer firmware (`sim.upgraded_share`) also send the catalog's signals
/// added after version 1 (`since` >= 2); the simulator does not model them, so they get plausible values
/// made up from what it does model: an odometer growing with the distance driven (`odometer`), tyre
/// temperatures warming with speed (`tire_temp_1_1` ..), a cabin held at 21 °C while the engine runs and
/// cooling towards 15 °C when parked (`cabin_temp`), `is_moving` from the speed, any other signal the middle
/// of its plausible range (found by those names or aliases). Owned by the fleet's thread (a scratch buffer).
class SignalMap {
 public:
  explicit SignalMap(std::shared_ptr<const catalog::Catalog> catalog);
  const catalog::Catalog& catalog() const { return *_catalog; }
  /// True when the catalog is cardata-v1 itself (same signals, same order) and nothing is added: the
  /// car's values are the message's.
  bool identity() const { return _identity; }
  /// Rewrites `values` (the car's cardata-v1 values, at least kSignalCount) as the catalog's values of one
  /// message; `upgraded`: the car sends the signals added after version 1. `dt_s`: time since the car's
  /// last message.
  void apply(std::vector<double>& values, bool upgraded, double dt_s, ExtraSignalState& state);

 private:
  enum class Kind : uint8_t { kOdometer, kTyreTemp, kCabinTemp, kMoving, kOther };
  struct Extra {
    std::size_t signal;
    Kind kind;
    std::size_t corner = 0;  // kTyreTemp
  };
  std::shared_ptr<const catalog::Catalog> _catalog;
  std::array<std::optional<std::size_t>, core::kSignalCount> _target{};  // catalog index of each cardata one
  std::vector<Extra> _extra;                                             // signals with since >= 2
  std::vector<bool> _modelled;  // per catalog signal: filled from a cardata one
  bool _identity = false;
  std::vector<double> _scratch;
};

/// Whether car `index` of a fleet with `share` upgraded cars is on newer firmware: every 1/share-th car, so
/// round(share x cars) of them, spread evenly, and a car's firmware does not depend on the fleet's size.
bool upgraded_car(std::size_t index, double share);

}  // namespace fleettwin::sim
