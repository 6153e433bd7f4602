#include "sim/signal_map.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/telemetry.h"

namespace fleettwin::sim {

namespace {

constexpr double kParkedAmbient = 15;    // °C: where parked tyres and cabins cool to
constexpr double kCabinSetPoint = 21;    // °C: the climate control's target while the engine runs
constexpr double kTyreWarmPerMps = 0.4;  // °C above ambient per m/s of speed, once warm
constexpr double kWarmRate = 0.05;       // share of the remaining gap closed per second
constexpr double kStartOdometerKm = 20'000;

}  // namespace

bool upgraded_car(std::size_t index, double share) {
  if (share <= 0) return false;
  if (share >= 1) return true;
  const auto before = static_cast<int64_t>(std::floor(static_cast<double>(index) * share));
  const auto after = static_cast<int64_t>(std::floor(static_cast<double>(index + 1) * share));
  return after > before;
}

SignalMap::SignalMap(std::shared_ptr<const catalog::Catalog> catalog)
    : _catalog(std::move(catalog)), _modelled(_catalog->size(), false) {
  bool same = _catalog->size() == core::kSignalCount;
  for (std::size_t s = 0; s < core::kSignalCount; ++s) {
    const auto target = _catalog->find(core::kSignals[s].name);
    if (target) _modelled[*target] = true;
    same = same && target == s;
    _target[s] = target;
  }
  _identity = same;
  for (std::size_t i = 0; i < _catalog->size(); ++i) {
    if (_modelled[i] || (*_catalog)[i].since < 2) continue;
    Extra e{i, Kind::kOther};
    if (_catalog->find("odometer") == i) e.kind = Kind::kOdometer;
    if (_catalog->find("cabin_temp") == i) e.kind = Kind::kCabinTemp;
    if (_catalog->find("is_moving") == i) e.kind = Kind::kMoving;
    for (std::size_t k = 0; k < 4; ++k) {
      const std::string alias = std::string("tire_temp_") + (k < 2 ? "1_" : "2_") + (k % 2 == 0 ? "1" : "2");
      if (_catalog->find(alias) == i) e = Extra{i, Kind::kTyreTemp, k};
    }
    _extra.push_back(e);
  }
}

void SignalMap::apply(std::vector<double>& values, bool upgraded, double dt_s, ExtraSignalState& state) {
  if (_identity) return;
  const double speed = values[core::kSpeed];
  const bool running = values[core::kIntakeAirFlowSpeed] > 0.5;
  auto& scratch = _scratch;
  scratch.assign(values.begin(), values.begin() + core::kSignalCount);
  values.assign(_catalog->size(), core::kAbsent);
  for (std::size_t s = 0; s < core::kSignalCount; ++s)
    if (const auto& target = _target[s]) values[*target] = scratch[s];
  // The made-up signals follow the car whether it sends them or not: an upgrade would not reset them.
  if (!state.started) {
    state = ExtraSignalState{true, kStartOdometerKm, {}, kParkedAmbient};
    state.tyre_temp.fill(kParkedAmbient);
  }
  state.odometer_km += std::max(0.0, speed) * dt_s / 1000.0;
  const double gap = 1.0 - std::exp(-kWarmRate * dt_s);
  for (auto& t : state.tyre_temp) t += (kParkedAmbient + kTyreWarmPerMps * std::max(0.0, speed) - t) * gap;
  state.cabin_temp += ((running ? kCabinSetPoint : kParkedAmbient) - state.cabin_temp) * gap * 0.2;
  if (!upgraded) return;
  for (const auto& e : _extra) {
    const auto& spec = (*_catalog)[e.signal];
    double v = 0.5 * (spec.min + spec.max);
    switch (e.kind) {
      case Kind::kOdometer:
        v = state.odometer_km;
        break;
      case Kind::kTyreTemp:
        v = state.tyre_temp[e.corner];
        break;
      case Kind::kCabinTemp:
        v = state.cabin_temp;
        break;
      case Kind::kMoving:
        v = speed > 0.1 ? 1 : 0;
        break;
      case Kind::kOther:
        break;
    }
    if (spec.type != core::SignalType::kDouble) v = std::round(v);
    values[e.signal] = std::clamp(v, spec.min, spec.max);
  }
}

}  // namespace fleettwin::sim
