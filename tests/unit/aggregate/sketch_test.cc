#include "aggregate/sketch.h"

#include <gtest/gtest.h>

#include <string>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>
#include "aggregate/state_bytes.h"

using fleettwin::aggregate::Sketch;
using fleettwin::aggregate::StateReader;
using fleettwin::aggregate::StateWriter;

namespace {

// The exact q-quantile as the sketch defines it: the value of rank floor(q * (n - 1)).
double exact(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

void expect_within_bound(const std::vector<double>& values, const char* what) {
  Sketch s;
  for (const double v : values) s.add(v);
  for (const double q : {0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0}) {
    const double want = exact(values, q);
    EXPECT_LE(std::abs(s.quantile(q) - want), 0.01 * std::abs(want) + 1e-9) << what << " q=" << q;
  }
}

}  // namespace

TEST(Sketch, QuantilesWithinOnePercentOfExactOverRandomData) {
  std::mt19937_64 rng(19);
  std::vector<double> uniform, lognormal, mixed;
  std::uniform_real_distribution<double> u(0, 150);
  std::lognormal_distribution<double> ln(3, 2);
  std::normal_distribution<double> n(0, 40);
  for (int i = 0; i < 20000; ++i) {
    uniform.push_back(u(rng));
    lognormal.push_back(ln(rng));
    mixed.push_back(n(rng));  // negative, positive, near zero
  }
  expect_within_bound(uniform, "uniform");
  expect_within_bound(lognormal, "lognormal");
  expect_within_bound(mixed, "normal around 0");
}

TEST(Sketch, EmptyIsNaNAndNonFiniteValuesAreIgnored) {
  Sketch s;
  EXPECT_TRUE(std::isnan(s.quantile(0.5)));
  s.add(std::nan(""));
  s.add(INFINITY);
  EXPECT_EQ(s.count(), 0U);
  s.add(0);
  s.add(0);
  EXPECT_EQ(s.quantile(0.5), 0);
  EXPECT_TRUE(std::isnan(s.quantile(1.5)));
}

TEST(Sketch, BucketCountIsBoundedAndTheHighQuantilesKeepTheirBound) {
  Sketch s(0.01, 64);
  std::vector<double> values;
  // Magnitudes from 1e-6 to 1e6: far more than 64 buckets of 2%.
  for (int i = 0; i < 10000; ++i) values.push_back(std::pow(10.0, -6 + 12.0 * i / 9999));
  for (const double v : values) s.add(v);
  EXPECT_LT(s.memory_bytes(), sizeof(Sketch) + 2 * 65 * sizeof(uint64_t));
  const double want = exact(values, 0.99);
  EXPECT_LE(std::abs(s.quantile(0.99) - want), 0.01 * want);
}

TEST(Sketch, OrderDoesNotMatter) {
  std::vector<double> values;
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> e(0.1);
  for (int i = 0; i < 5000; ++i) values.push_back(e(rng));
  Sketch a(0.01, 32), b(0.01, 32);
  for (const double v : values) a.add(v);
  std::shuffle(values.begin(), values.end(), rng);
  for (const double v : values) b.add(v);
  for (const double q : {0.1, 0.5, 0.95, 0.99}) EXPECT_EQ(a.quantile(q), b.quantile(q));
}

// Buckets count in 32 bits; a bucket past 2^32 (a fleet window of billions of events, restored here rather
// than added one by one) keeps its whole count: the quantiles, and the bytes it saves back.
TEST(Sketch, ABucketPastTwoToThe32KeepsItsWholeCount) {
  const auto index = static_cast<int32_t>(std::ceil(std::log(100.0) / std::log(1.01 / 0.99)));
  const auto saved = [&](uint64_t big) {
    std::string bytes;
    StateWriter w(bytes);
    w.i64(index);  // positive: one bucket of 100s
    w.u64(1);
    w.u64(big);
    w.i64(0);  // negative: none
    w.u64(0);
    w.u64(0);    // zeros
    w.u64(big);  // count
    w.f64(100);
    w.f64(100);
    return bytes;
  };
  const auto count_of = [](const Sketch& s) {
    std::string bytes;
    StateWriter w(bytes);
    s.save(w);
    StateReader r(bytes);
    int64_t offset = 0;
    uint64_t n = 0, c = 0;
    EXPECT_TRUE(r.i64(offset) && r.u64(n) && n == 1 && r.u64(c));
    return c;
  };
  for (const uint64_t big : {(uint64_t{1} << 32) - 1, (uint64_t{1} << 32) + 3, uint64_t{5} << 33}) {
    Sketch s;
    const std::string bytes = saved(big);
    StateReader r(bytes);
    ASSERT_TRUE(s.restore(r)) << r.error();
    s.add(100);  // the same bucket: wraps its 32 bits in the first case
    EXPECT_EQ(s.count(), big + 1);
    EXPECT_EQ(count_of(s), big + 1) << big;
    s.add(1000);  // one above: the median stays at 100, the maximum is 1000
    EXPECT_NEAR(s.quantile(0.5), 100, 1);
    EXPECT_EQ(s.quantile(1), 1000);
  }
}

// A saved sketch whose bucket offset is near INT64_MAX (found by the aggregate_partial fuzzer): refused, with
// no signed overflow in the range check.
TEST(Sketch, ABucketOffsetNearTheLargestLongIsRefused) {
  std::string bytes;
  StateWriter w(bytes);
  w.i64(INT64_MAX - 22);
  w.u64(1);
  w.u64(1);
  Sketch s;
  StateReader r(bytes);
  EXPECT_FALSE(s.restore(r));
  EXPECT_STREQ(r.error(), "sketch: bucket index out of range");
  EXPECT_EQ(s.count(), 0U);
}
