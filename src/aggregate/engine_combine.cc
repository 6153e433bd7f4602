// Group windows (per fleet, per attribute value): each source partition's partial, and the combiner that
// merges the latest partial of every source into the group's result (docs/architecture.md "Group windows").
#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "aggregate/engine.h"
#include "aggregate/state_bytes.h"

namespace fleettwin::aggregate {

namespace {

int64_t plus(int64_t end, int64_t d) { return end > INT64_MAX - d ? INT64_MAX : end + d; }

}  // namespace

void Engine::emit_partial(std::size_t def, std::string_view key, const KeyState& ks, Window& w,
                          int32_t source) {
  Partial p;
  p.aggregate = _defs[def].name;
  p.group = std::string(key);
  p.source = source;
  p.event_time = ks.max_ts;
  p.window_start = w.start;
  p.count = w.count;
  save_window(def, w, p.window);
  w.dirty = false;
  _partials.push_back(std::move(p));
}

void Engine::touch_source(int32_t source) {
  const auto it = _sources.find(source);
  if (it == _sources.end()) return;
  for (std::size_t slot = 0; slot < _group_defs.size(); ++slot) {
    for (auto& [key, ks] : it->second[slot]) {
      for (auto& w : ks.windows) {
        if (w.dirty) continue;
        w.dirty = true;
        _dirty.push_back({_group_defs[slot], key, w.start, source});
      }
    }
  }
}

bool Engine::combine(const Partial& p, std::string* error) {
  auto refuse = [&](const char* why) {
    ++_counters.partials_refused;
    if (error) *error = why;
    return false;
  };
  std::size_t slot = 0;
  while (slot < _group_defs.size() && _defs[_group_defs[slot]].name != p.aggregate) ++slot;
  if (slot == _group_defs.size()) return refuse("no group aggregate of this name");
  const std::size_t def = _group_defs[slot];
  const Definition& d = _defs[def];
  if (p.group.empty() || p.group.size() > kMaxGroupBytes) return refuse("group name empty or too long");
  if (d.grouping == Grouping::kFleet && p.group != "fleet") return refuse("fleet aggregate of another group");
  if (p.source < 0) return refuse("negative source partition");
  if (p.event_time < -kMaxEventTime || p.event_time > kMaxEventTime) return refuse("event time out of range");
  Window w;
  StateReader r(p.window);
  if (!restore_window(def, w, r) || !(r.at_end() || r.fail("trailing bytes"))) return refuse(r.error());
  if (w.start != p.window_start || w.count != p.count) return refuse("window does not match its partial");
  if (w.count <= 0) return refuse("empty window");
  if (w.revision != 0) return refuse("a partial's window has no revision");
  if (p.event_time < w.start) return refuse("event time before the window");

  auto& keys = _combined[slot];
  auto k = keys.find(std::string_view(p.group));
  if (k == keys.end()) k = keys.emplace(p.group, CombinedKey{}).first;
  CombinedKey& ck = k->second;
  ck.max_ts = std::max(ck.max_ts, p.event_time);
  if (!ck.listed) {
    ck.listed = true;
    _touched_keys.emplace_back(slot, p.group);
  }
  const bool past = plus(w.start + d.size_ms, d.allowed_lateness_ms) <= ck.max_ts;
  const bool dropped = ck.windows.size() >= _options.max_windows_per_key && !ck.windows.empty() &&
                       w.start < ck.windows.begin()->first;
  if ((past && !ck.windows.contains(w.start)) || dropped) {
    ++_counters.partials_late;
    return true;
  }
  auto& cw = ck.windows[w.start];
  const auto [part, fresh] = cw.parts.try_emplace(p.source);
  if (fresh || w.count > part->second.count) part->second = std::move(w);
  // Touched even when not newer: a copy that took the group over writes its result again (the same
  // revision, which the store ignores), so a result the last owner read but did not write is not lost.
  cw.touched = true;
  while (ck.windows.size() > _options.max_windows_per_key) {
    auto oldest = ck.windows.begin();
    ++_counters.evicted_open;
    if (oldest->second.touched || !oldest->second.emitted)
      emit_combined(def, p.group, oldest->first, oldest->second, true);
    ck.windows.erase(oldest);
  }
  return true;
}

void Engine::flush_combined() {
  for (auto& [slot, group] : std::exchange(_touched_keys, {})) {
    auto k = _combined[slot].find(std::string_view(group));
    if (k == _combined[slot].end()) continue;
    CombinedKey& ck = k->second;
    ck.listed = false;
    const std::size_t def = _group_defs[slot];
    const Definition& d = _defs[def];
    for (auto it = ck.windows.begin(); it != ck.windows.end();) {
      const int64_t end = it->first + d.size_ms;
      const bool closed = plus(end, d.grace_ms) <= ck.max_ts;
      const bool expire = plus(end, d.allowed_lateness_ms) <= ck.max_ts;
      CombinedWindow& cw = it->second;
      if (closed && (cw.touched || !cw.emitted)) {
        emit_combined(def, group, it->first, cw, expire);
        cw.emitted = true;
        cw.touched = false;
      }
      it = expire ? ck.windows.erase(it) : std::next(it);
    }
  }
}

void Engine::merge_into(std::size_t def, Window& into, const Window& from) const {
  into.count += from.count;
  for (std::size_t i = 0; i < into.signals.size(); ++i) {
    SignalState& s = into.signals[i];
    const SignalState& o = from.signals[i];
    if (o.n == 0) continue;
    if (s.n == 0) {
      s.min = o.min;
      s.max = o.max;
    } else {
      s.min = std::min(s.min, o.min);
      s.max = std::max(s.max, o.max);
    }
    // The latest by (event time, seq, value), as count() keeps it: the same whatever the sources.
    if (s.n == 0 || std::tie(o.last_ts, o.last_seq, o.last) > std::tie(s.last_ts, s.last_seq, s.last)) {
      s.last = o.last;
      s.last_ts = o.last_ts;
      s.last_seq = o.last_seq;
    }
    s.n += o.n;
    s.sum += o.sum;
    if (const std::size_t k = _sketch_of[def][i]; k != kNoSketch) into.sketches[k].merge(from.sketches[k]);
  }
}

void Engine::emit_combined(std::size_t def, const std::string& group, int64_t start, const CombinedWindow& cw,
                           bool final) {
  const Definition& d = _defs[def];
  Window merged;
  merged.start = start;
  merged.signals.resize(d.signals.size());
  merged.sketches.resize(static_cast<std::size_t>(std::count_if(
      _sketch_of[def].begin(), _sketch_of[def].end(), [](std::size_t i) { return i != kNoSketch; })));
  // Sources in partition order: the same partials give the same sums, bit for bit.
  for (const auto& [source, part] : cw.parts) merge_into(def, merged, part);
  Result r;
  r.aggregate = d.name;
  r.group = group;
  r.window_start = start;
  r.window_end = start + d.size_ms;
  // The events merged: more for any later partial of any source, and the same for the same partials.
  // Results carry a 32-bit revision: a window of more than 2^31 - 1 events keeps that one.
  r.revision = static_cast<uint32_t>(std::min<int64_t>(merged.count, INT32_MAX));
  r.final = final;
  r.count = merged.count;
  for (std::size_t i = 0; i < d.signals.size(); ++i) {
    const std::size_t k = _sketch_of[def][i];
    const Sketch* sketch = k != kNoSketch ? &merged.sketches[k] : nullptr;
    for (const Function f : d.signals[i].functions)
      r.values.push_back(value_of(f, merged.signals[i], sketch));
  }
  _pending.push_back(std::move(r));
}

void Engine::forget_combined(const std::function<bool(std::string_view, std::string_view)>& drop) {
  for (std::size_t slot = 0; slot < _group_defs.size(); ++slot) {
    const std::string& name = _defs[_group_defs[slot]].name;
    std::erase_if(_combined[slot], [&](const auto& entry) { return drop(name, entry.first); });
  }
}

}  // namespace fleettwin::aggregate
