#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "core/metrics.h"

namespace fleettwin::api {

/// One sample of the pipeline's counters (what /fleet/throughput returns and the stream pushes). Plain value.
struct ThroughputSample {
  int64_t ts = 0;
  double msgs_per_s = 0;
  int64_t published = 0, processed = 0, stored = 0, dlq = 0, lag = 0, online = 0;
};

/// {"ts","msgs_per_s","published","processed","stored","dlq","lag","online"}.
std::string sample_json(const ThroughputSample& s);

/// Reads the counters of `metrics` now (null: an empty sample stamped now). `lag_stages` are the stages
/// whose consumer lag is summed; the rate is taken against `prev`, `seconds` earlier.
ThroughputSample take_sample(const core::Metrics* metrics, const std::vector<std::string>& lag_stages,
                             const ThroughputSample& prev, double seconds);

/// The last ten minutes of samples, one a second. Appended by the API's background thread, read by HTTP
/// workers; locked.
class ThroughputLog {
 public:
  void add(const ThroughputSample& s);
  /// The newest sample, or an empty one stamped now before the first.
  ThroughputSample latest() const;
  /// The newest `n` samples, oldest first, as a JSON array.
  std::string last_json(std::size_t n) const;

 private:
  static constexpr std::size_t kKeep = 600;
  mutable std::mutex _mu;
  std::deque<ThroughputSample> _samples;
};

}  // namespace fleettwin::api
