#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace fleettwin::aggregate {

class StateWriter;
class StateReader;

/// A quantile sketch in the manner of DDSketch (Masson, Rim, Lee, VLDB 2019): values go into logarithmic
/// buckets of ratio gamma = (1 + a) / (1 - a), so any quantile it answers is within a relative error `a` of
/// the exact one (the value of rank floor(q * (n - 1)) among the values added), as long as that value's
/// bucket was not collapsed. Hand-written because no C++ sketch library is packaged in Debian (DataDog's
/// sketches-cpp, Apache DataSketches are not), and the part we need is this small.
///
/// Bounded: at most `max_buckets` buckets per sign; past that the buckets of the smallest magnitudes are
/// merged into one (so the bound holds for every quantile whose value is within a factor gamma^max_buckets of
/// the largest magnitude: with the defaults, 1% and 2048 buckets, a factor of about 4e17). Values of
/// magnitude below 1e-9 count as zero. Merging and adding commute: the same values in any order give the same
/// sketch. Not thread-safe (a plain value).
class Sketch {
 public:
  static constexpr double kDefaultRelativeError = 0.01;
  static constexpr std::size_t kDefaultMaxBuckets = 2048;

  explicit Sketch(double relative_error = kDefaultRelativeError,
                  std::size_t max_buckets = kDefaultMaxBuckets);

  /// Adds a finite value (NaN and infinities are ignored).
  void add(double v);
  /// Adds every value `other` holds (same parameters): the buckets' counts add up, so the merge of two
  /// sketches answers as one that saw both sets of values (but for buckets collapsed by the bound).
  void merge(const Sketch& other);
  /// The q-quantile (0 <= q <= 1) of the values added, within the relative error; NaN when empty.
  double quantile(double q) const;
  uint64_t count() const { return _count; }
  /// Bytes held, the object included.
  std::size_t memory_bytes() const;
  /// Writes the buckets, counts and extremes (not the parameters: the reader's must be the same).
  void save(StateWriter& w) const;
  /// Replaces the state with what save() wrote; false (the sketch then empty) on bytes save() cannot have
  /// written with these parameters: more buckets than max_buckets, counts that do not add up, indices whose
  /// values overflow.
  bool restore(StateReader& r);

 private:
  // Dense counts for indices [offset, offset + counts.size()), 32 bits each: half the memory of 64, and a
  // car's hourly window holds hundreds of buckets but a few thousand events at most. A bucket past 2^32 (a
  // fleet window of billions of events) keeps the rest, its count less its low 32 bits, in `carry`.
  struct Store {
    int32_t offset = 0;
    std::vector<uint32_t> counts;
    std::vector<std::pair<int32_t, uint64_t>> carry;  ///< (index, count - low 32 bits); mostly empty
    void add(int32_t index, std::size_t max_buckets, uint64_t n = 1);
    /// The count of counts[i].
    uint64_t at(std::size_t i) const;
    /// Sets the count of counts[i].
    void set(std::size_t i, uint64_t count);
  };
  int32_t index_of(double magnitude) const;
  double value_of(int32_t index) const;

  double _gamma;
  double _log_gamma;
  std::size_t _max_buckets;
  Store _positive;
  Store _negative;
  uint64_t _zero = 0;
  uint64_t _count = 0;
  double _min = 0;
  double _max = 0;
};

}  // namespace fleettwin::aggregate
