#include "sim/fleet.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "core/signals.h"

namespace fleettwin::sim {

namespace {

std::size_t id_width(std::size_t cars) {
  std::size_t digits = 1;
  for (std::size_t n = cars > 0 ? cars - 1 : 0; n >= 10; n /= 10) ++digits;
  return std::max<std::size_t>(5, digits);
}

FleetConfig checked(FleetConfig config) {
  if (auto why = validate(config); !why.empty()) throw std::invalid_argument("fleet config: " + why);
  return config;
}

}  // namespace

std::string validate(const FleetConfig& c) {
  if (c.cars == 0) return "cars must be at least 1";
  if (c.cars > 0xffffffffULL) return "cars must be below 2^32";
  if (c.interval_ms <= 0) return "interval_ms must be positive";
  if (c.interval_ms > 86'400'000) return "interval_ms must be at most one day";
  if (c.start_ms < 0) return "start_ms must not be negative";
  if (c.duration_ms < 0) return "duration_ms must not be negative (0 = forever)";
  if (!(c.failure_rate >= 0) || !std::isfinite(c.failure_rate))
    return "failure_rate must be a finite number >= 0";
  if (c.ramp_ms < 0) return "ramp_ms must not be negative";
  if (c.firmware_release_ms < 0) return "firmware_release_ms must not be negative (0 = never)";
  if (!c.box.valid()) return "bounding box must be non-empty, finite and within lat -85..85, lon -180..180";
  if (!core::valid_car_id(car_id(c, c.cars - 1)))
    return "id_prefix must be [A-Za-z0-9_-] and short enough for " + std::to_string(core::kMaxCarIdLength) +
           "-character ids";
  if (c.shards == 0 || c.shard >= c.shards) return "shard must be below shards (and shards at least 1)";
  if (!(c.upgraded_share >= 0 && c.upgraded_share <= 1)) return "upgraded_share must be between 0 and 1";
  for (const auto& p : c.planned_failures) {
    if (p.car >= c.cars)
      return "planned failure for car index " + std::to_string(p.car) + " outside the fleet";
    if (p.after_ms < 0) return "planned failure time must not be negative";
  }
  return {};
}

std::string car_id(const FleetConfig& config, std::size_t index) {
  std::string digits = std::to_string(index);
  const std::size_t width = id_width(config.cars);
  std::string id = config.id_prefix;
  if (digits.size() < width) id.append(width - digits.size(), '0');
  return id + digits;
}

Fleet::Fleet(FleetConfig config)
    : _config(checked(std::move(config))),
      _constants(_config.interval_ms, _config.ramp_ms, _config.failure_rate, _config.firmware_release_ms,
                 _config.box),
      _end_ms(_config.duration_ms > 0 ? _config.start_ms + _config.duration_ms : kNoMoreMessages) {
  const std::size_t n = _config.cars;
  _ids.reserve(n);
  _offset.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    _ids.push_back(sim::car_id(_config, i));
    _offset.push_back(
        static_cast<int64_t>(static_cast<__int128>(i) * _config.interval_ms / static_cast<__int128>(n)));
  }
  if (_config.catalog) {
    _map = std::make_unique<SignalMap>(_config.catalog);
    if (_map->identity()) _map.reset();
  }
  resume({});
}

std::optional<std::size_t> Fleet::car_index(std::string_view id) const {
  const std::string& prefix = _config.id_prefix;
  if (id.size() != _ids.front().size() || id.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::size_t index = 0;
  for (char ch : id.substr(prefix.size())) {
    if (ch < '0' || ch > '9') return std::nullopt;
    index = index * 10 + static_cast<std::size_t>(ch - '0');
  }
  if (index >= _ids.size()) return std::nullopt;
  return index;
}

int64_t Fleet::due_ms(std::size_t index, int64_t seq) const {
  return _config.start_ms + (seq - 1) * _config.interval_ms + _offset[index];
}

void Fleet::resume(const std::vector<std::pair<std::string, int64_t>>& last_seq_per_car) {
  const std::size_t n = _config.cars;
  std::vector<std::vector<PlannedFailure>> planned(n);
  for (const auto& p : _config.planned_failures) planned[p.car].push_back(p);

  std::vector<int64_t> last(n, 0);
  for (const auto& [id, seq] : last_seq_per_car)
    if (auto i = car_index(id)) last[*i] = std::max(last[*i], seq);

  _cars.clear();
  _cars.reserve(n);
  _extra.assign(_map ? n : 0, ExtraSignalState{});
  core::Telemetry scratch;
  for (std::size_t i = 0; i < n; ++i) {
    _cars.emplace_back(_config.seed, i, _constants, std::move(planned[i]));
    // Replaying is the only way to reach the exact state: the model is a chain of random draws. Onsets
    // found while replaying are before the resume point and are not reported again.
    if (simulates(i))
      for (int64_t s = 0; s < last[i]; ++s) step_car(i, scratch, nullptr);
  }
  _failures.clear();
  _onsets.clear();
  reset_schedule(last);
}

void Fleet::reset_schedule(const std::vector<int64_t>& first_round) {
  _active.clear();
  _pending.clear();
  _pos = 0;
  _finished = false;
  _round = std::numeric_limits<int64_t>::max();
  for (std::size_t i = 0; i < first_round.size(); ++i)
    if (simulates(i)) _round = std::min(_round, first_round[i]);
  for (std::size_t i = 0; i < first_round.size(); ++i) {
    if (!simulates(i)) continue;
    if (first_round[i] == _round)
      _active.push_back(static_cast<uint32_t>(i));
    else
      _pending.emplace_back(first_round[i], static_cast<uint32_t>(i));
  }
  // Latest round first, so the next car to join is at the back.
  std::sort(_pending.begin(), _pending.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second > b.second;
  });
  settle();
}

void Fleet::settle() {
  // Ensures _active[_pos] is the next car to send, moving to later rounds (and admitting resumed cars
  // whose round has come) as needed.
  while (_pos >= _active.size()) {
    if (_pending.empty() && _active.empty()) {
      _finished = true;
      return;
    }
    ++_round;
    if (_active.empty()) _round = _pending.back().first;
    _pos = 0;
    if (!_pending.empty() && _pending.back().first == _round) {
      const std::size_t old = _active.size();
      while (!_pending.empty() && _pending.back().first == _round) {
        _active.push_back(_pending.back().second);
        _pending.pop_back();
      }
      std::inplace_merge(_active.begin(), _active.begin() + static_cast<std::ptrdiff_t>(old), _active.end());
    }
  }
}

int64_t Fleet::next_due_ms() const {
  if (_finished) return kNoMoreMessages;
  const int64_t due = _config.start_ms + _round * _config.interval_ms + _offset[_active[_pos]];
  return due >= _end_ms ? kNoMoreMessages : due;
}

bool Fleet::next(core::Telemetry& out) {
  if (_finished) return false;
  const uint32_t i = _active[_pos];
  const int64_t due = _config.start_ms + _round * _config.interval_ms + _offset[i];
  if (due >= _end_ms) {
    _finished = true;
    return false;
  }
  Car& car = _cars[i];
  step_car(i, out, &_onsets);
  out.car.assign(_ids[i]);
  out.ts = due;
  out.seq = car.seq();
  if (!_onsets.empty()) {
    const int64_t first_ts = _config.start_ms + _offset[i];
    for (const auto& o : _onsets)
      _failures.push_back(
          {_ids[i], o.mode, first_ts + o.onset_local_ms, first_ts + o.onset_local_ms + _config.ramp_ms});
    _onsets.clear();
  }
  if (++_pos >= _active.size()) settle();
  return true;
}

void Fleet::step_car(std::size_t i, core::Telemetry& out, std::vector<FailureOnset>* onsets) {
  if (out.values.size() != core::kSignalCount) out.values.resize(core::kSignalCount, core::kAbsent);
  _cars[i].step(_constants, out, onsets);
  if (_map) _map->apply(out.values, upgraded_car(i, _config.upgraded_share), _constants.dt_s, _extra[i]);
}

std::vector<GroundTruth> Fleet::take_failures() {
  std::vector<GroundTruth> out;
  out.swap(_failures);
  return out;
}

}  // namespace fleettwin::sim
