#include "aggregate/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace fleettwin::aggregate {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::string_view kFleetGroup = "fleet";

bool is_percentile(Function f) { return f == Function::kP50 || f == Function::kP95 || f == Function::kP99; }

// Floor division, so windows of negative times align too.
int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }

// end + d without overflow (event times near the int64 limits are nonsense, but outside input).
int64_t plus(int64_t end, int64_t d) { return end > INT64_MAX - d ? INT64_MAX : end + d; }

}  // namespace

Engine::Engine(std::vector<Definition> definitions, EngineOptions options)
    : _defs(std::move(definitions)), _options(options) {
  if (_options.max_windows_per_key < 1)
    throw std::invalid_argument("aggregate: max_windows_per_key must be >= 1");
  for (const auto& d : _defs) {
    if (d.size_ms <= 0 || d.advance_ms <= 0 || d.size_ms % d.advance_ms != 0) {
      throw std::invalid_argument("aggregate " + d.name + ": invalid window");
    }
    auto& sketch_of = _sketch_of.emplace_back();
    std::size_t sketches = 0;
    for (const auto& sf : d.signals) {
      const bool has = std::any_of(sf.functions.begin(), sf.functions.end(), is_percentile);
      sketch_of.push_back(has ? sketches++ : kNoSketch);
    }
    if (d.grouping == Grouping::kCar) {
      _slot.push_back(_car_definitions++);
      _attribute.push_back(0);
      continue;
    }
    _slot.push_back(_group_defs.size());
    _group_defs.push_back(static_cast<std::size_t>(&d - _defs.data()));
    _combined.emplace_back();
    std::size_t a = 0;
    if (d.grouping == Grouping::kAttribute) {
      a = static_cast<std::size_t>(std::find(_attributes.begin(), _attributes.end(), d.attribute) -
                                   _attributes.begin());
      if (a == _attributes.size()) _attributes.push_back(d.attribute);
    }
    _attribute.push_back(a);
  }
  _fingerprint = compute_fingerprint();
  _group_fingerprint = compute_group_fingerprint();
}

Engine::~Engine() = default;

Engine::CarState Engine::new_car() const {
  CarState car;
  if (_car_definitions > kInlineKeys) car.more_keys.resize(_car_definitions - kInlineKeys);
  return car;
}

std::vector<Engine::Map<Engine::KeyState>>& Engine::source_groups(int32_t source) {
  auto it = _sources.find(source);
  if (it == _sources.end())
    it = _sources.emplace(source, std::vector<Map<KeyState>>(_group_defs.size())).first;
  return it->second;
}

AddStatus Engine::add(const core::Telemetry& t, std::span<const std::string_view> attribute_values,
                      int32_t source) {
  if (attribute_values.size() < _attributes.size()) {
    throw std::invalid_argument("aggregate: add() needs a value of every attribute");
  }
  if (t.ts < -kMaxEventTime || t.ts > kMaxEventTime) return AddStatus::kBadTime;
  auto* entry = _cars.find(t.car);
  if (entry == nullptr) entry = &_cars.insert(t.car, new_car());
  CarState& car = entry->value;
  if (t.seq <= car.last_seq) {
    ++_counters.duplicates;
    return AddStatus::kDuplicate;
  }
  car.last_seq = t.seq;
  bool refused = false;
  std::vector<Map<KeyState>>* by_slot = _group_defs.empty() ? nullptr : &source_groups(source);
  for (std::size_t d = 0; d < _defs.size(); ++d) {
    if (_defs[d].grouping == Grouping::kCar) {
      refused |= !count(d, car.key(_slot[d]), t.car, t, source);
      continue;
    }
    const std::string_view value =
        _defs[d].grouping == Grouping::kFleet ? kFleetGroup : attribute_values[_attribute[d]];
    auto& groups = (*by_slot)[_slot[d]];
    auto g = groups.find(value);
    if (g == groups.end()) g = groups.emplace(value, KeyState{}).first;
    refused |= !count(d, g->second, value, t, source);
  }
  if (refused) {
    ++_counters.too_late;
    return AddStatus::kTooLate;
  }
  ++_counters.accepted;
  return AddStatus::kAccepted;
}

// Counts `t` in every window of definition `def` that covers it and is still kept; false when none took it
// because all were past their lateness (or dropped by the bound).
bool Engine::count(std::size_t def, KeyState& ks, std::string_view key, const core::Telemetry& t,
                   int32_t source) {
  const Definition& d = _defs[def];
  const int64_t newest = floor_div(t.ts, d.advance_ms) * d.advance_ms;
  const auto& sketch_of = _sketch_of[def];
  bool taken = false;
  for (int64_t start = newest - d.size_ms + d.advance_ms; start <= newest; start += d.advance_ms) {
    const int64_t end = start + d.size_ms;
    if ((ks.max_ts != INT64_MIN && plus(end, d.allowed_lateness_ms) <= ks.max_ts) ||
        start <= ks.dropped_through) {
      continue;
    }
    Window* w = window_for(def, ks, key, start, source);
    if (w == nullptr) continue;
    taken = true;
    ++w->count;
    for (std::size_t i = 0; i < d.signals.size(); ++i) {
      const std::size_t idx = d.signals[i].signal;
      const double v = idx < t.values.size() ? t.values[idx] : core::kAbsent;
      if (core::absent(v)) continue;
      SignalState& s = w->signals[i];
      if (s.n == 0) {
        s.min = v;
        s.max = v;
      } else {
        s.min = std::min(s.min, v);
        s.max = std::max(s.max, v);
      }
      ++s.n;
      s.sum += v;
      // The latest by (event time, seq, value): the same whatever order a group's cars interleave in.
      if (s.n == 1 || std::tie(t.ts, t.seq, v) > std::tie(s.last_ts, s.last_seq, s.last)) {
        s.last = v;
        s.last_ts = t.ts;
        s.last_seq = t.seq;
      }
      if (sketch_of[i] != kNoSketch) w->sketches[sketch_of[i]].add(v);
    }
    // A group window's partial is made at the next flush whatever its state; a car's window changes its
    // result only once closed.
    if ((w->revision > 0 || d.grouping != Grouping::kCar) && !w->dirty) {
      w->dirty = true;
      _dirty.push_back({def, std::string(key), start, source});
    }
  }
  if (t.ts > ks.max_ts) ks.max_ts = t.ts;
  if (ks.max_ts >= ks.next_due) settle(def, ks, key, source);
  return taken;
}

// The window of `ks` starting at `start`, created when new (dropping the oldest past the bound); nullptr when
// it would be the one dropped.
Engine::Window* Engine::window_for(std::size_t def, KeyState& ks, std::string_view key, int64_t start,
                                   int32_t source) {
  auto& ws = ks.windows;
  // Mostly the newest or the one before it: search from the back.
  std::size_t pos = ws.size();
  while (pos > 0 && ws[pos - 1].start >= start) --pos;
  if (pos < ws.size() && ws[pos].start == start) return &ws[pos];
  if (ws.size() >= _options.max_windows_per_key) {
    if (pos == 0) return nullptr;
    Window& oldest = ws.front();
    if (_defs[def].grouping != Grouping::kCar) {
      ++_counters.evicted_open;
      if (oldest.dirty) emit_partial(def, key, ks, oldest, source);
    } else if (oldest.revision == 0) {
      ++_counters.evicted_open;
      emit(def, key, oldest, true);
    } else {
      ++_counters.retired_closed;
      if (oldest.dirty) emit(def, key, oldest, true);
    }
    ks.dropped_through = oldest.start;
    ws.erase(ws.begin());
    --pos;
  }
  const Definition& d = _defs[def];
  Window w;
  w.start = start;
  w.signals.resize(d.signals.size());
  const auto sketches = static_cast<std::size_t>(std::count_if(_sketch_of[def].begin(), _sketch_of[def].end(),
                                                               [](std::size_t i) { return i != kNoSketch; }));
  w.sketches.resize(sketches);
  const auto at = ws.insert(ws.begin() + static_cast<std::ptrdiff_t>(pos), std::move(w));
  // A source's group window has no close of its own (the combiner closes the merge): it is only dropped.
  const int64_t due = d.grouping == Grouping::kCar ? d.grace_ms : d.allowed_lateness_ms;
  ks.next_due = std::min(ks.next_due, plus(start + d.size_ms, due));
  return &*at;
}

// Closes the windows whose end + grace the key's event time has reached, drops those past their lateness,
// and works out when there is work next.
void Engine::settle(std::size_t def, KeyState& ks, std::string_view key, int32_t source) {
  const Definition& d = _defs[def];
  const bool group = d.grouping != Grouping::kCar;
  std::size_t expired = 0;
  ks.next_due = INT64_MAX;
  for (auto& w : ks.windows) {
    const int64_t end = w.start + d.size_ms;
    const int64_t expires = plus(end, d.allowed_lateness_ms);
    const bool expire = expires <= ks.max_ts;
    if (group) {
      if (expire && w.dirty) emit_partial(def, key, ks, w, source);
    } else if (w.revision == 0 && plus(end, d.grace_ms) <= ks.max_ts) {
      emit(def, key, w, expire);
    } else if (expire && w.dirty) {
      emit(def, key, w, true);
    }
    if (expire) {
      ++expired;
    } else {
      ks.next_due = std::min(ks.next_due, w.revision == 0 && !group ? plus(end, d.grace_ms) : expires);
    }
  }
  // Windows expire oldest first (they all share size and lateness).
  ks.windows.erase(ks.windows.begin(), ks.windows.begin() + static_cast<std::ptrdiff_t>(expired));
}

double Engine::value_of(Function f, const SignalState& s, const Sketch* sketch) {
  if (f == Function::kCount) return static_cast<double>(s.n);
  if (s.n == 0) return kNaN;
  switch (f) {
    case Function::kMin:
      return s.min;
    case Function::kMax:
      return s.max;
    case Function::kMean:
      return s.sum / static_cast<double>(s.n);
    case Function::kSum:
      return s.sum;
    case Function::kLast:
      return s.last;
    case Function::kP50:
      return sketch != nullptr ? sketch->quantile(0.5) : kNaN;
    case Function::kP95:
      return sketch != nullptr ? sketch->quantile(0.95) : kNaN;
    case Function::kP99:
      return sketch != nullptr ? sketch->quantile(0.99) : kNaN;
    case Function::kCount:
      break;
  }
  return kNaN;
}

void Engine::emit(std::size_t def, std::string_view key, Window& w, bool final) {
  const Definition& d = _defs[def];
  Result r;
  r.aggregate = d.name;
  r.group = std::string(key);
  r.window_start = w.start;
  r.window_end = w.start + d.size_ms;
  r.revision = ++w.revision;
  r.final = final;
  r.count = w.count;
  for (std::size_t i = 0; i < d.signals.size(); ++i) {
    const SignalState& s = w.signals[i];
    const std::size_t k = _sketch_of[def][i];
    const Sketch* sketch = k != kNoSketch ? &w.sketches[k] : nullptr;
    for (const Function f : d.signals[i].functions) r.values.push_back(value_of(f, s, sketch));
  }
  w.dirty = false;
  _pending.push_back(std::move(r));
}

std::vector<Result> Engine::flush() {
  for (const auto& dirty : _dirty) {
    KeyState* ks = nullptr;
    const bool group = _defs[dirty.def].grouping != Grouping::kCar;
    if (!group) {
      if (auto* entry = _cars.find(dirty.key); entry != nullptr) ks = &entry->value.key(_slot[dirty.def]);
    } else if (auto src = _sources.find(dirty.source); src != _sources.end()) {
      auto& groups = src->second[_slot[dirty.def]];
      if (auto it = groups.find(std::string_view(dirty.key)); it != groups.end()) ks = &it->second;
    }
    if (ks == nullptr) continue;
    for (auto& w : ks->windows) {
      if (w.start != dirty.start || !w.dirty) continue;
      if (group) {
        emit_partial(dirty.def, dirty.key, *ks, w, dirty.source);
      } else {
        emit(dirty.def, dirty.key, w, false);
      }
    }
  }
  _dirty.clear();
  if (_options.combine_own_partials) {
    for (const auto& p : take_partials()) {
      std::string error;
      if (!combine(p, &error)) throw std::logic_error("aggregate: own partial refused: " + error);
    }
  }
  flush_combined();
  return std::exchange(_pending, {});
}

std::size_t Engine::window_bytes(const Window& w) {
  std::size_t bytes = w.signals.capacity() * sizeof(SignalState) +
                      (w.sketches.capacity() - w.sketches.size()) * sizeof(Sketch);
  for (const auto& sk : w.sketches) bytes += sk.memory_bytes();
  return bytes;
}

std::size_t Engine::key_bytes(const KeyState& ks) {
  std::size_t bytes = ks.windows.capacity() * sizeof(Window);
  for (const auto& w : ks.windows) bytes += window_bytes(w);
  return bytes;
}

std::size_t Engine::car_bytes(const std::string& id, const CarState& car) const {
  // The entry (its id and state) and about two pointers of the allocator's bookkeeping; its slot is counted
  // with the index.
  std::size_t bytes = sizeof(FlatIndex<CarState>::Entry) + 2 * sizeof(void*);
  if (id.capacity() > std::string().capacity()) bytes += id.capacity() + 1;
  bytes += car.more_keys.capacity() * sizeof(KeyState);
  for (std::size_t i = 0; i < _car_definitions; ++i) bytes += key_bytes(car.key(i));
  return bytes;
}

std::size_t Engine::car_memory_bytes(std::string_view car) const {
  const auto* entry = _cars.find(car);
  return entry == nullptr ? 0 : car_bytes(entry->id, entry->value);
}

std::size_t Engine::memory_bytes() const {
  std::size_t bytes = sizeof(*this) + _cars.slot_bytes();
  _cars.for_each([&](const auto& entry) { bytes += car_bytes(entry.id, entry.value); });
  for (const auto& [source, by_slot] : _sources) {
    for (const auto& groups : by_slot) {
      bytes += groups.bucket_count() * sizeof(void*);
      for (const auto& [key, ks] : groups)
        bytes += sizeof(std::pair<const std::string, KeyState>) + key.capacity() + key_bytes(ks);
    }
  }
  for (const auto& keys : _combined) {
    for (const auto& [group, ck] : keys) {
      bytes += sizeof(std::pair<const std::string, CombinedKey>) + group.capacity();
      for (const auto& [start, cw] : ck.windows) {
        bytes += 64;  // the map's node
        for (const auto& [source, w] : cw.parts) bytes += 48 + sizeof(Window) + window_bytes(w);
      }
    }
  }
  for (const auto& p : _partials) bytes += sizeof(Partial) + p.window.capacity() + p.group.capacity();
  for (const auto& r : _pending) bytes += sizeof(Result) + r.values.capacity() * sizeof(double);
  return bytes + _dirty.capacity() * sizeof(Dirty);
}

}  // namespace fleettwin::aggregate
