#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/telemetry.h"

namespace fleettwin::ml {

struct TrainingData;

/// Bins per signal of a drift reference: deciles of the training values.
inline constexpr std::size_t kDriftBins = 10;
/// Share floor of an empty bin in the PSI: an empty bin on one side would make the statistic infinite.
inline constexpr double kDriftFloor = 1e-4;

/// One signal's training distribution over fixed bins, recorded in the model's metadata ("drift"), against
/// which live traffic is compared (population stability index). Plain value.
struct DriftReference {
  std::string signal;       ///< the signal's catalog name
  std::size_t feature = 0;  ///< its index in the feature space (a signal: its catalog index)
  /// Ascending cut points; bin i holds the values in (edges[i-1], edges[i]]; edges.size() + 1 bins. Ties in
  /// the training data (an integer tyre pressure) merge quantiles, so a signal may have fewer than 10 bins.
  std::vector<float> edges;
  std::vector<float> expected;  ///< share of the training values in each bin (sums to 1)
};

/// The bin of `x`: the first cut point not below it (values equal to a cut point go to the bin below it).
/// Training and live values are binned the same way.
std::size_t drift_bin(const std::vector<float>& edges, double x);

/// Drift references of the signals among `features` (indices into data.space; derived features are left
/// out: they follow from the signals), from the defined values of at most `max_rows` training rows taken at
/// an even stride. A signal with no defined value gets none.
std::vector<DriftReference> drift_references(const TrainingData& data,
                                             const std::vector<std::size_t>& features,
                                             std::size_t bins = kDriftBins, std::size_t max_rows = 200'000);

/// Population stability index of `counts` (total `total`) against `expected`:
/// sum over bins of (actual - expected) * ln(actual / expected), shares floored at kDriftFloor.
/// 0 for identical distributions; by the usual reading below 0.1 stable, above 0.25 a shift.
double psi(const std::vector<float>& expected, const int64_t* counts, int64_t total);

/// Throws std::invalid_argument when a reference is not usable (edges not finite and ascending, more than
/// 64 bins, expected shares not one per bin or negative): the metadata is outside input.
void check_drift_references(const std::vector<DriftReference>& refs);

/// Per-signal PSI of a sliding window of live events against a model's references. Memory is bounded:
/// the window keeps one byte (a bin) per signal per event, `window` events at most, and a count per bin;
/// adding an event costs one binary search over at most 64 cut points per signal. Used by the score stage's
/// thread only.
class DriftWatch {
 public:
  explicit DriftWatch(std::size_t window = 20'000, std::size_t min_values = 1'000);
  /// Starts over against `refs` (a new model): the window is emptied, its bins meant the old cut points.
  void reset(std::vector<DriftReference> refs);
  void add(const core::Telemetry& event);
  /// PSI of each reference signal over the window (negative: fewer than min_values values of it yet).
  const std::vector<double>& compute();
  const std::vector<DriftReference>& references() const { return _refs; }
  std::size_t events() const { return _filled; }

 private:
  static constexpr uint8_t kNone = 0xff;  // the event did not carry the signal
  std::size_t _window, _min_values;
  std::vector<DriftReference> _refs;
  std::vector<uint8_t> _ring;    // _window rows of _refs.size() bins
  std::vector<int64_t> _counts;  // per signal, per bin (64 slots per signal)
  std::vector<int64_t> _totals;  // per signal: values in the window
  std::vector<double> _psi;
  std::size_t _next = 0, _filled = 0;
};

/// When drift asks for a retraining: the largest PSI above `threshold` for `for_ms` of event time without a
/// break, and at most once per `cooldown_ms` of event time. Event time, not the wall clock, so a replay or a
/// test decides the same way. Used by the score stage's thread only.
class DriftAlarm {
 public:
  DriftAlarm(double threshold, int64_t for_ms, int64_t cooldown_ms)
      : _threshold(threshold), _for_ms(for_ms), _cooldown_ms(cooldown_ms) {}
  /// The largest PSI now (negative: not known yet) at event time `ts`; true when a retraining is due.
  bool update(double max_psi, int64_t ts);
  double threshold() const { return _threshold; }

 private:
  double _threshold;
  int64_t _for_ms, _cooldown_ms;
  int64_t _above_since = -1;
  int64_t _last_request = -1;
};

}  // namespace fleettwin::ml
