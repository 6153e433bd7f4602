#include "ml/drift.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "ml/dataset.h"

namespace fleettwin::ml {

namespace {
constexpr std::size_t kMaxBins = 64;  // bins fit a byte and the watch's fixed slots
}  // namespace

std::size_t drift_bin(const std::vector<float>& edges, double x) {
  // A value equal to a cut point belongs to the bin below it (lower_bound), so a cut at a quantile that many
  // training values share (an integer pressure) keeps them together. Compared as doubles: a live reading
  // equal to a cut point lands where training put it.
  return static_cast<std::size_t>(
      std::lower_bound(edges.begin(), edges.end(), x,
                       [](float e, double v) { return static_cast<double>(e) < v; }) -
      edges.begin());
}

std::vector<DriftReference> drift_references(const TrainingData& data,
                                             const std::vector<std::size_t>& features, std::size_t bins,
                                             std::size_t max_rows) {
  std::vector<DriftReference> out;
  const std::size_t rows = data.rows(), width = data.space->size();
  if (rows == 0 || bins < 2 || bins > kMaxBins) return out;
  const std::size_t stride =
      std::max<std::size_t>(1, (rows + max_rows - 1) / std::max<std::size_t>(max_rows, 1));
  std::vector<float> values;
  for (std::size_t f : features) {
    if (f >= data.space->signals()) continue;
    values.clear();
    for (std::size_t r = 0; r < rows; r += stride) {
      const float x = data.features[r * width + f];
      if (std::isfinite(x)) values.push_back(x);
    }
    if (values.empty()) continue;
    std::sort(values.begin(), values.end());
    DriftReference ref;
    ref.signal = data.space->name(f);
    ref.feature = f;
    for (std::size_t b = 1; b < bins; ++b) {
      // The largest value of the lowest b/bins share: with values equal to a cut point in the bin below it,
      // each bin then holds its share.
      const float q = values[std::max<std::size_t>(1, b * values.size() / bins) - 1];
      // Ties (a signal with few distinct values) merge quantiles; the top value is no cut point, else the
      // last bin would be empty by construction.
      if ((ref.edges.empty() || q > ref.edges.back()) && q < values.back()) ref.edges.push_back(q);
    }
    std::vector<int64_t> counts(ref.edges.size() + 1, 0);
    for (float x : values) ++counts[drift_bin(ref.edges, x)];
    for (int64_t c : counts)
      ref.expected.push_back(static_cast<float>(static_cast<double>(c) / static_cast<double>(values.size())));
    out.push_back(std::move(ref));
  }
  return out;
}

double psi(const std::vector<float>& expected, const int64_t* counts, int64_t total) {
  if (total <= 0) return 0;
  double sum = 0;
  for (std::size_t b = 0; b < expected.size(); ++b) {
    const double e = std::max<double>(expected[b], kDriftFloor);
    const double a = std::max(static_cast<double>(counts[b]) / static_cast<double>(total), kDriftFloor);
    sum += (a - e) * std::log(a / e);
  }
  return sum;
}

void check_drift_references(const std::vector<DriftReference>& refs) {
  for (const auto& r : refs) {
    const auto bad = [&](const std::string& why) {
      return std::invalid_argument("model metadata: drift reference of \"" + r.signal + "\": " + why);
    };
    if (r.edges.size() + 1 > kMaxBins) throw bad("more than 64 bins");
    if (r.expected.size() != r.edges.size() + 1) throw bad("needs one expected share per bin");
    for (std::size_t i = 0; i < r.edges.size(); ++i)
      if (!std::isfinite(r.edges[i]) || (i > 0 && !(r.edges[i] > r.edges[i - 1])))
        throw bad("cut points must be finite and ascending");
    for (float e : r.expected)
      if (!(e >= 0 && e <= 1)) throw bad("expected shares must lie in [0, 1]");
  }
}

DriftWatch::DriftWatch(std::size_t window, std::size_t min_values)
    : _window(std::max<std::size_t>(window, 1)), _min_values(std::max<std::size_t>(min_values, 1)) {}

void DriftWatch::reset(std::vector<DriftReference> refs) {
  _refs = std::move(refs);
  _ring.assign(_window * _refs.size(), kNone);
  _counts.assign(kMaxBins * _refs.size(), 0);
  _totals.assign(_refs.size(), 0);
  _psi.assign(_refs.size(), -1);
  _next = _filled = 0;
}

void DriftWatch::add(const core::Telemetry& event) {
  const std::size_t n = _refs.size();
  if (n == 0) return;
  uint8_t* row = &_ring[_next * n];
  for (std::size_t s = 0; s < n; ++s) {
    // The oldest event leaves the window as this one enters.
    if (row[s] != kNone) {
      --_counts[s * kMaxBins + row[s]];
      --_totals[s];
    }
    const auto f = _refs[s].feature;
    if (f < event.values.size() && !core::absent(event.values[f]) && std::isfinite(event.values[f])) {
      row[s] = static_cast<uint8_t>(drift_bin(_refs[s].edges, event.values[f]));
      ++_counts[s * kMaxBins + row[s]];
      ++_totals[s];
    } else {
      row[s] = kNone;
    }
  }
  _next = (_next + 1) % _window;
  _filled = std::min(_filled + 1, _window);
}

const std::vector<double>& DriftWatch::compute() {
  for (std::size_t s = 0; s < _refs.size(); ++s)
    _psi[s] = _totals[s] >= static_cast<int64_t>(std::min(_min_values, _window))
                  ? psi(_refs[s].expected, &_counts[s * kMaxBins], _totals[s])
                  : -1;
  return _psi;
}

bool DriftAlarm::update(double max_psi, int64_t ts) {
  if (!(max_psi > _threshold)) {
    _above_since = -1;  // sustained means without a break
    return false;
  }
  if (_above_since < 0) _above_since = ts;
  if (ts - _above_since < _for_ms) return false;
  if (_last_request >= 0 && ts - _last_request < _cooldown_ms) return false;
  _last_request = ts;
  return true;
}

}  // namespace fleettwin::ml
