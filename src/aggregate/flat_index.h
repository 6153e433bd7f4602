#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fleettwin::aggregate {

/// Values by string id, for the engine's cars: open addressing with linear probing over one array of (hash,
/// entry) slots, each entry (id and value) in an allocation of its own, so its address is stable. Why not
/// std::unordered_map: its lookup reads the bucket, then the node before the one sought (another car's,
/// cold), then the node; here a lookup reads one slot of a compact array (mostly cached) and then the entry,
/// one cache miss less per event. Abseil's flat_hash_map does the same (Debian packages libabsl-dev), but it
/// is no dependency of fleettwin, and for this one map of the engine a hundred lines here cost less than a
/// new library in every build and image. Erasing shifts the following slots back (no tombstones). Not
/// thread-safe: the engine's thread only.
template <typename V>
class FlatIndex {
 public:
  struct Entry {
    std::string id;
    V value;
  };

  /// The entry of `id`, or nullptr.
  Entry* find(std::string_view id) const {
    if (_size == 0) return nullptr;
    const uint64_t h = hash(id);
    for (std::size_t i = h & _mask;; i = (i + 1) & _mask) {
      const Slot& s = _slots[i];
      if (!s.entry) return nullptr;
      if (s.hash == h && s.entry->id == id) return s.entry.get();
    }
  }

  /// Inserts `id` with `value` (the caller checked it is not there); returns the new entry.
  Entry& insert(std::string_view id, V value) {
    // At most half full: probes stay short.
    if (2 * (_size + 1) > _slots.size()) grow();
    const uint64_t h = hash(id);
    std::size_t i = h & _mask;
    while (_slots[i].entry) i = (i + 1) & _mask;
    _slots[i].hash = h;
    _slots[i].entry = std::make_unique<Entry>(Entry{std::string(id), std::move(value)});
    ++_size;
    return *_slots[i].entry;
  }

  /// Removes `id`; false when it was not there.
  bool erase(std::string_view id) {
    if (_size == 0) return false;
    const uint64_t h = hash(id);
    std::size_t i = h & _mask;
    for (;; i = (i + 1) & _mask) {
      if (!_slots[i].entry) return false;
      if (_slots[i].hash == h && _slots[i].entry->id == id) break;
    }
    _slots[i] = Slot{};
    --_size;
    // Shift back every following slot of the run that its home slot allows to move into the gap.
    for (std::size_t j = (i + 1) & _mask; _slots[j].entry; j = (j + 1) & _mask) {
      const std::size_t home = _slots[j].hash & _mask;
      // The gap i lies cyclically in [home, j): the entry at j may move there.
      if (((j - home) & _mask) >= ((j - i) & _mask)) {
        _slots[i] = std::move(_slots[j]);
        _slots[j] = Slot{};
        i = j;
      }
    }
    return true;
  }

  std::size_t size() const { return _size; }
  /// Bytes of the slot array (the entries are the caller's to count).
  std::size_t slot_bytes() const { return _slots.capacity() * sizeof(Slot); }
  /// Calls f(entry) for every entry, in no particular order.
  template <typename F>
  void for_each(F&& f) const {
    for (const auto& s : _slots) {
      if (s.entry) f(*s.entry);
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    std::unique_ptr<Entry> entry;
  };

  static uint64_t hash(std::string_view id) { return std::hash<std::string_view>{}(id); }

  void grow() {
    std::vector<Slot> old = std::exchange(_slots, std::vector<Slot>(_slots.empty() ? 16 : 2 * _slots.size()));
    _mask = _slots.size() - 1;
    for (auto& s : old) {
      if (!s.entry) continue;
      std::size_t i = s.hash & _mask;
      while (_slots[i].entry) i = (i + 1) & _mask;
      _slots[i] = std::move(s);
    }
  }

  std::vector<Slot> _slots;
  std::size_t _mask = 0;
  std::size_t _size = 0;
};

}  // namespace fleettwin::aggregate
