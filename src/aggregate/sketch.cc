#include "aggregate/sketch.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "aggregate/state_bytes.h"

namespace fleettwin::aggregate {

namespace {
constexpr double kMinMagnitude = 1e-9;
}  // namespace

Sketch::Sketch(double relative_error, std::size_t max_buckets)
    : _gamma((1 + relative_error) / (1 - relative_error)),
      _log_gamma(std::log(_gamma)),
      _max_buckets(max_buckets) {
  if (!(relative_error > 0 && relative_error < 1) || max_buckets < 2) {
    throw std::invalid_argument("sketch: relative error must be in (0, 1) and max buckets at least 2");
  }
}

int32_t Sketch::index_of(double magnitude) const {
  return static_cast<int32_t>(std::ceil(std::log(magnitude) / _log_gamma));
}

double Sketch::value_of(int32_t index) const {
  // The middle of bucket (gamma^(i-1), gamma^i] in relative terms: within a/(1) of every value in it.
  return 2 * std::pow(_gamma, index) / (_gamma + 1);
}

namespace {

// Room for `n` counts and an eighth more (plus a few): a store grows only when a new extreme comes, so the
// vector's doubling would mostly hold empty capacity, and there are two sketches in every car's hourly
// window.
void fit(std::vector<uint32_t>& counts, std::size_t n) {
  if (n > counts.capacity()) counts.reserve(n + n / 8 + 4);
}

}  // namespace

uint64_t Sketch::Store::at(std::size_t i) const {
  uint64_t c = counts[i];
  const auto index = offset + static_cast<int32_t>(i);
  for (const auto& [at, high] : carry) c += at == index ? high : 0;
  return c;
}

void Sketch::Store::set(std::size_t i, uint64_t count) {
  counts[i] = static_cast<uint32_t>(count);
  const uint64_t high = count - counts[i];
  const auto index = offset + static_cast<int32_t>(i);
  std::erase_if(carry, [&](const auto& c) { return c.first == index; });
  if (high != 0) carry.emplace_back(index, high);
}

void Sketch::Store::add(int32_t index, std::size_t max_buckets, uint64_t n) {
  if (counts.empty()) {
    offset = index;
    counts.assign(1, 0);
  }
  const auto size = static_cast<int32_t>(counts.size());
  if (index < offset) {
    // Below the range: grow downwards unless that passes the bound, then it lands in the lowest bucket.
    const int32_t top = offset + size - 1;
    const int32_t lowest = std::max(index, top - static_cast<int32_t>(max_buckets) + 1);
    if (lowest < offset) {
      fit(counts, counts.size() + static_cast<std::size_t>(offset - lowest));
      counts.insert(counts.begin(), static_cast<std::size_t>(offset - lowest), 0);
      offset = lowest;
    }
    const auto i = static_cast<std::size_t>(std::max(index, offset) - offset);
    if (n != 1) {
      set(i, at(i) + n);
    } else if (++counts[i] == 0) {
      set(i, at(i) + (uint64_t{1} << 32));  // wrapped: 2^32 more
    }
    return;
  }
  if (index >= offset + size) {
    fit(counts, static_cast<std::size_t>(index - offset) + 1);
    counts.resize(static_cast<std::size_t>(index - offset) + 1, 0);
    if (counts.size() > max_buckets) {
      // Collapse the smallest magnitudes into the lowest bucket that stays.
      const std::size_t drop = counts.size() - max_buckets;
      uint64_t merged = 0;
      for (std::size_t i = 0; i <= drop; ++i) merged += at(i);
      counts.erase(counts.begin(), counts.begin() + static_cast<std::ptrdiff_t>(drop));
      offset += static_cast<int32_t>(drop);
      std::erase_if(carry, [&](const auto& c) { return c.first < offset; });
      set(0, merged);
    }
  }
  const auto i = static_cast<std::size_t>(index - offset);
  if (n != 1) {
    set(i, at(i) + n);
  } else if (++counts[i] == 0) {
    set(i, at(i) + (uint64_t{1} << 32));  // wrapped: 2^32 more
  }
}

void Sketch::merge(const Sketch& other) {
  if (other._count == 0) return;
  if (_count == 0) {
    _min = other._min;
    _max = other._max;
  } else {
    _min = std::min(_min, other._min);
    _max = std::max(_max, other._max);
  }
  _count += other._count;
  _zero += other._zero;
  const std::pair<const Store*, Store*> stores[] = {{&other._positive, &_positive},
                                                    {&other._negative, &_negative}};
  for (const auto& [from, into] : stores) {
    // Highest first: a collapse by the bound then lands the smallest magnitudes in the lowest bucket, as
    // add() does.
    for (std::size_t i = from->counts.size(); i-- > 0;) {
      const uint64_t c = from->at(i);
      if (c != 0) into->add(from->offset + static_cast<int32_t>(i), _max_buckets, c);
    }
  }
}

void Sketch::add(double v) {
  if (!std::isfinite(v)) return;
  if (_count == 0) {
    _min = v;
    _max = v;
  } else {
    _min = std::min(_min, v);
    _max = std::max(_max, v);
  }
  ++_count;
  if (v > kMinMagnitude) {
    _positive.add(index_of(v), _max_buckets);
  } else if (v < -kMinMagnitude) {
    _negative.add(index_of(-v), _max_buckets);
  } else {
    ++_zero;
  }
}

double Sketch::quantile(double q) const {
  if (_count == 0 || !(q >= 0 && q <= 1)) return std::numeric_limits<double>::quiet_NaN();
  const auto rank = static_cast<uint64_t>(q * static_cast<double>(_count - 1));
  uint64_t seen = 0;
  double v = 0;
  bool found = false;
  // Negative values, largest magnitude (smallest value) first.
  for (std::size_t i = _negative.counts.size(); i-- > 0 && !found;) {
    seen += _negative.at(i);
    if (seen > rank) {
      v = -value_of(_negative.offset + static_cast<int32_t>(i));
      found = true;
    }
  }
  if (!found) {
    seen += _zero;
    found = seen > rank;
  }
  for (std::size_t i = 0; i < _positive.counts.size() && !found; ++i) {
    seen += _positive.at(i);
    if (seen > rank) {
      v = value_of(_positive.offset + static_cast<int32_t>(i));
      found = true;
    }
  }
  // The exact extremes are known, and clamping only brings an estimate closer to the truth.
  return std::clamp(v, _min, _max);
}

std::size_t Sketch::memory_bytes() const {
  return sizeof(*this) + (_positive.counts.capacity() + _negative.counts.capacity()) * sizeof(uint32_t) +
         (_positive.carry.capacity() + _negative.carry.capacity()) * sizeof(std::pair<int32_t, uint64_t>);
}

void Sketch::save(StateWriter& w) const {
  for (const Store* s : {&_positive, &_negative}) {
    w.i64(s->offset);
    w.u64(s->counts.size());
    for (std::size_t i = 0; i < s->counts.size(); ++i) w.u64(s->at(i));
  }
  w.u64(_zero);
  w.u64(_count);
  w.f64(_min);
  w.f64(_max);
}

bool Sketch::restore(StateReader& r) {
  // Bucket indices of finite doubles (|log(1.8e308) / log(gamma)|) stay far below this for any usable gamma.
  constexpr int64_t kMaxIndex = int64_t{1} << 30;
  uint64_t total = 0;
  bool ok = true;
  for (Store* s : {&_positive, &_negative}) {
    int64_t offset = 0;
    uint64_t n = 0;
    ok = ok && r.i64(offset) && r.count(n, _max_buckets, "sketch: more buckets than allowed");
    // The offset alone first: offset + n overflows for one near INT64_MAX (found by aggregate_partial).
    ok = ok &&
         ((offset >= -kMaxIndex && offset <= kMaxIndex && offset + static_cast<int64_t>(n) <= kMaxIndex) ||
          r.fail("sketch: bucket index out of range"));
    s->counts.clear();
    s->carry.clear();
    s->offset = static_cast<int32_t>(offset);
    for (uint64_t i = 0; ok && i < n; ++i) {
      uint64_t c = 0;
      ok = r.u64(c) && (c <= (UINT64_MAX >> 2) - total || r.fail("sketch: counts overflow"));
      total += c;
      s->counts.push_back(0);
      s->set(s->counts.size() - 1, c);
    }
  }
  ok = ok && r.u64(_zero) && r.u64(_count) && r.f64(_min) && r.f64(_max);
  ok = ok &&
       ((_zero <= (UINT64_MAX >> 2) && total + _zero == _count) || r.fail("sketch: counts do not add up"));
  ok = ok && (_count == 0 || (std::isfinite(_min) && std::isfinite(_max) && _min <= _max) ||
              r.fail("sketch: bad extremes"));
  if (!ok) {
    _positive = Store{};
    _negative = Store{};
    _zero = _count = 0;
    _min = _max = 0;
  }
  return ok;
}

}  // namespace fleettwin::aggregate
