// Engine::save_car / restore_car: a car's windows as bytes, for the aggregate stage's changelog
// (docs/architecture.md "Windows over time").
#include <algorithm>
#include <cmath>

#include "aggregate/engine.h"
#include "aggregate/state_bytes.h"

namespace fleettwin::aggregate {

namespace {

constexpr uint64_t kStateVersion = 1;
constexpr int64_t kMaxCount = int64_t{1} << 62;

// FNV-1a, 64 bits: stable across builds and platforms (std::hash is neither).
class Fnv {
 public:
  void bytes(std::string_view s) {
    for (const char c : s) {
      _h ^= static_cast<uint8_t>(c);
      _h *= 1099511628211ULL;
    }
    _h ^= 0xFF;  // a separator, so ("ab", "c") and ("a", "bc") differ
    _h *= 1099511628211ULL;
  }
  void number(int64_t v) { bytes(std::to_string(v)); }
  uint64_t value() const { return _h; }

 private:
  uint64_t _h = 14695981039346656037ULL;
};

int64_t plus(int64_t end, int64_t d) { return end > INT64_MAX - d ? INT64_MAX : end + d; }

/// What decides the layout of a definition's windows: their timing and each signal's functions.
void hash_windows(Fnv& f, const Definition& d) {
  f.number(d.size_ms);
  f.number(d.advance_ms);
  f.number(d.grace_ms);
  f.number(d.allowed_lateness_ms);
  for (const auto& s : d.signals) {
    f.bytes(s.name);
    for (const Function fn : s.functions) f.bytes(function_name(fn));
  }
}

}  // namespace

uint64_t Engine::compute_fingerprint() const {
  Fnv f;
  f.number(static_cast<int64_t>(_options.max_windows_per_key));
  for (const auto& d : _defs) {
    if (d.grouping != Grouping::kCar) continue;  // only per-car windows are saved
    f.bytes(d.name);
    hash_windows(f, d);
  }
  return f.value();
}

uint64_t Engine::compute_group_fingerprint() const {
  Fnv f;
  f.bytes("groups");
  f.number(static_cast<int64_t>(_options.max_windows_per_key));
  for (const std::size_t def : _group_defs) {
    const Definition& d = _defs[def];
    f.bytes(d.name);
    f.number(static_cast<int64_t>(d.grouping));
    f.bytes(d.attribute);
    hash_windows(f, d);
  }
  return f.value();
}

void Engine::save_window(std::size_t def, const Window& win, std::string& out) const {
  StateWriter w(out);
  w.i64(win.start);
  w.i64(win.count);
  w.u64(win.revision);
  for (std::size_t i = 0; i < win.signals.size(); ++i) {
    const SignalState& s = win.signals[i];
    w.i64(s.n);
    w.f64(s.min);
    w.f64(s.max);
    w.f64(s.sum);
    w.f64(s.last);
    w.i64(s.last_ts);
    w.i64(s.last_seq);
    if (const std::size_t k = _sketch_of[def][i]; k != kNoSketch) win.sketches[k].save(w);
  }
}

std::string Engine::save_source(int32_t source) const {
  std::string out;
  const auto it = _sources.find(source);
  if (it == _sources.end()) return out;
  StateWriter w(out);
  w.u64(kStateVersion);
  w.u64(_group_fingerprint);
  w.u64(_group_defs.size());
  for (std::size_t slot = 0; slot < _group_defs.size(); ++slot) {
    const auto& groups = it->second[slot];
    w.u64(groups.size());
    for (const auto& [key, ks] : groups) {
      w.bytes(key);
      w.i64(ks.max_ts);
      w.i64(ks.dropped_through);
      w.u64(ks.windows.size());
      for (const Window& win : ks.windows) save_window(_group_defs[slot], win, out);
    }
  }
  return out;
}

bool Engine::restore_source(int32_t source, std::string_view bytes, std::string* error) {
  StateReader r(bytes);
  std::vector<Map<KeyState>> state(_group_defs.size());
  uint64_t version = 0, fingerprint = 0, slots = 0;
  bool ok = r.u64(version) && (version == kStateVersion || r.fail("unknown state version")) &&
            r.u64(fingerprint) &&
            (fingerprint == _group_fingerprint || r.fail("saved with other definitions")) && r.u64(slots) &&
            (slots == _group_defs.size() || r.fail("group definitions differ"));
  for (std::size_t slot = 0; ok && slot < _group_defs.size(); ++slot) {
    uint64_t keys = 0;
    // Each group takes a few bytes at least, which bounds the count by the input.
    ok = r.count(keys, r.remaining() / 4, "more groups than bytes");
    for (uint64_t i = 0; ok && i < keys; ++i) {
      std::string key;
      ok = r.bytes(key, kMaxGroupBytes, "group name too long") &&
           (!key.empty() || r.fail("empty group name")) &&
           (_defs[_group_defs[slot]].grouping != Grouping::kFleet || key == "fleet" ||
            r.fail("fleet aggregate of another group")) &&
           (!state[slot].contains(key) || r.fail("group saved twice"));
      if (ok) ok = restore_key(_group_defs[slot], state[slot][key], r);
    }
  }
  ok = ok && (r.at_end() || r.fail("trailing bytes"));
  if (!ok) {
    if (error) *error = r.error();
    return false;
  }
  _sources[source] = std::move(state);
  return true;
}
std::string Engine::save_car(std::string_view car) const {
  std::string out;
  const auto* entry = _cars.find(car);
  if (entry == nullptr) return out;
  StateWriter w(out);
  w.u64(kStateVersion);
  w.u64(_fingerprint);
  w.i64(entry->value.last_seq);
  w.u64(_car_definitions);
  for (std::size_t def = 0; def < _defs.size(); ++def) {
    if (_defs[def].grouping != Grouping::kCar) continue;
    const KeyState& ks = entry->value.key(_slot[def]);
    w.i64(ks.max_ts);
    w.i64(ks.dropped_through);
    w.u64(ks.windows.size());
    for (const Window& win : ks.windows) save_window(def, win, out);
  }
  return out;
}

bool Engine::restore_window(std::size_t def, Window& w, StateReader& r) const {
  const Definition& d = _defs[def];
  uint64_t revision = 0;
  // Counts and revisions far below their types' limits: the engine goes on adding to them.
  if (!r.i64(w.start) || !r.i64(w.count) || !r.count(revision, INT32_MAX / 2, "revision out of range"))
    return false;
  if (w.start < -kMaxEventTime || w.start > kMaxEventTime || w.start % d.advance_ms != 0)
    return r.fail("window start not a window of the definition");
  if (w.count < 0 || w.count > kMaxCount) return r.fail("count out of range");
  w.revision = static_cast<uint32_t>(revision);
  w.signals.resize(d.signals.size());
  w.sketches.clear();
  for (std::size_t i = 0; i < d.signals.size(); ++i) {
    SignalState& s = w.signals[i];
    if (!r.i64(s.n) || !r.f64(s.min) || !r.f64(s.max) || !r.f64(s.sum) || !r.f64(s.last) ||
        !r.i64(s.last_ts) || !r.i64(s.last_seq))
      return false;
    if (s.n < 0 || s.n > w.count) return r.fail("signal count out of range");
    if (_sketch_of[def][i] != kNoSketch && !w.sketches.emplace_back().restore(r)) return false;
  }
  return true;
}

bool Engine::restore_key(std::size_t def, KeyState& ks, StateReader& r) const {
  const Definition& d = _defs[def];
  uint64_t n = 0;
  if (!r.i64(ks.max_ts) || !r.i64(ks.dropped_through) ||
      !r.count(n, _options.max_windows_per_key, "more windows than allowed"))
    return false;
  ks.windows.resize(n);
  ks.next_due = INT64_MAX;
  for (std::size_t i = 0; i < n; ++i) {
    Window& w = ks.windows[i];
    if (!restore_window(def, w, r)) return false;
    if (i > 0 && w.start <= ks.windows[i - 1].start) return r.fail("windows out of order");
    // When settle() has work next, as settle() itself works it out.
    const int64_t end = w.start + d.size_ms;
    ks.next_due =
        std::min(ks.next_due, w.revision == 0 ? plus(end, d.grace_ms) : plus(end, d.allowed_lateness_ms));
  }
  return true;
}

bool Engine::restore_car(std::string_view car, std::string_view bytes, std::string* error) {
  StateReader r(bytes);
  CarState state = new_car();
  uint64_t version = 0, fingerprint = 0, keys = 0;
  bool ok = r.u64(version) && (version == kStateVersion || r.fail("unknown state version")) &&
            r.u64(fingerprint) && (fingerprint == _fingerprint || r.fail("saved with other definitions")) &&
            r.i64(state.last_seq) &&
            r.count(keys, _car_definitions, "more windowed definitions than known") &&
            (keys == _car_definitions || r.fail("fewer windowed definitions than known"));
  for (std::size_t def = 0; ok && def < _defs.size(); ++def) {
    if (_defs[def].grouping == Grouping::kCar) ok = restore_key(def, state.key(_slot[def]), r);
  }
  ok = ok && (r.at_end() || r.fail("trailing bytes"));
  if (!ok) {
    if (error) *error = r.error();
    return false;
  }
  if (auto* entry = _cars.find(car); entry != nullptr) {
    entry->value = std::move(state);
  } else {
    _cars.insert(car, std::move(state));
  }
  return true;
}

std::vector<std::string> Engine::car_ids() const {
  std::vector<std::string> ids;
  ids.reserve(_cars.size());
  _cars.for_each([&](const auto& entry) { ids.push_back(entry.id); });
  return ids;
}

int64_t Engine::car_event_time(std::string_view car) const {
  int64_t t = INT64_MIN;
  if (const auto* entry = _cars.find(car); entry != nullptr)
    for (std::size_t i = 0; i < _car_definitions; ++i) t = std::max(t, entry->value.key(i).max_ts);
  return t;
}

void Engine::forget_car(std::string_view car) { _cars.erase(car); }

void Engine::forget_source(int32_t source) { _sources.erase(source); }

std::vector<int32_t> Engine::sources() const {
  std::vector<int32_t> out;
  out.reserve(_sources.size());
  for (const auto& [source, groups] : _sources) out.push_back(source);
  return out;
}

}  // namespace fleettwin::aggregate
