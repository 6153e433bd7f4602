#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fleettwin::store {

/// A seq per car id, on the hot path of SqliteStore::write (one lookup per telemetry row). Open addressing
/// with linear probing over one array of slots, so a lookup touches one or two cache lines where
/// std::unordered_map divides by a prime and chases a bucket and a node pointer. No erase, only clear().
/// Used by the thread that owns the store.
class CarSeqMap {
 public:
  /// The seq stored for `car`, or nullptr. Valid until the next set() or clear().
  const int64_t* find(std::string_view car) const;
  /// Inserts or overwrites.
  void set(std::string_view car, int64_t seq);
  void clear();
  size_t size() const { return _size; }

 private:
  struct Slot {
    uint64_t hash = 0;
    int64_t seq = 0;
    std::string car;
    bool used = false;
  };
  size_t probe(std::string_view car, uint64_t hash) const;  ///< slot holding car, or the free slot for it
  void grow();

  std::vector<Slot> _slots;  // size is 0 or a power of two, at most half full
  size_t _size = 0;
};

}  // namespace fleettwin::store
