#include "ml/alerting.h"

#include <algorithm>
#include <bit>

namespace fleettwin::ml {

Transition AlertTracker::update(bool anomalous, const HysteresisRule& rule) {
  const int n = std::clamp(rule.window_n, 1, 64);
  const uint64_t mask = n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1);
  _recent = ((_recent << 1) | (anomalous ? 1u : 0u)) & mask;
  _normal_streak = anomalous ? 0 : _normal_streak + 1;
  if (!_active) {
    if (std::popcount(_recent) >= rule.raise_k) {
      _active = true;
      return Transition::kRaised;
    }
    return Transition::kNone;
  }
  if (_normal_streak >= rule.clear_m) {
    _active = false;
    _recent = 0;  // a cleared car starts from a clean window, or the old events would re-raise at once
    return Transition::kCleared;
  }
  return Transition::kNone;
}

bool FirmwareCar::update(int64_t version, int64_t ts, FirmwareFleet& fleet) {
  if (version > fleet.current) {
    fleet.current = version;
    fleet.current_since = ts;
  }
  const bool rolled_back = version < _highest;
  _highest = std::max(_highest, version);
  if (version >= fleet.current) {
    _behind_since = -1;
  } else if (_behind_since < 0) {
    _behind_since = fleet.current_since;  // behind since the release, not since this car next reported
  }
  return rolled_back || (_behind_since >= 0 && ts - _behind_since > fleet.grace_ms);
}

}  // namespace fleettwin::ml
