#include "store/sqlite/car_seq_map.h"

#include <functional>
#include <utility>

namespace fleettwin::store {

size_t CarSeqMap::probe(std::string_view car, uint64_t hash) const {
  size_t mask = _slots.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = _slots[i];
    if (!s.used || (s.hash == hash && s.car == car)) return i;
  }
}

const int64_t* CarSeqMap::find(std::string_view car) const {
  if (_size == 0) return nullptr;
  const Slot& s = _slots[probe(car, std::hash<std::string_view>{}(car))];
  return s.used ? &s.seq : nullptr;
}

void CarSeqMap::set(std::string_view car, int64_t seq) {
  if (2 * (_size + 1) > _slots.size()) grow();
  uint64_t hash = std::hash<std::string_view>{}(car);
  Slot& s = _slots[probe(car, hash)];
  if (!s.used) {
    s.used = true;
    s.hash = hash;
    s.car.assign(car);
    ++_size;
  }
  s.seq = seq;
}

void CarSeqMap::clear() {
  _slots.clear();
  _size = 0;
}

void CarSeqMap::grow() {
  size_t capacity = _slots.empty() ? 1024 : 2 * _slots.size();
  std::vector<Slot> old = std::exchange(_slots, std::vector<Slot>(capacity));
  for (Slot& s : old) {
    if (!s.used) continue;
    _slots[probe(s.car, s.hash)] = std::move(s);
  }
}

}  // namespace fleettwin::store
