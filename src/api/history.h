#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "store/twin_store.h"

namespace fleettwin::api {

/// A car's history reduced to at most one point per `step` ms, column by column (the shape uPlot draws
/// without copying): bucket start times, one column per requested signal (the bucket's mean), the anomaly
/// score (the bucket's maximum, so a short spike is never averaged away) and the rows behind each point.
/// Empty buckets are left out; a signal no row of a bucket carried is NaN there (null in JSON). Plain value.
struct HistorySeries {
  int64_t from = 0, to = 0, step = 1;
  std::vector<int64_t> ts;
  std::vector<std::size_t> signals;         ///< catalog indexes, in request order
  std::vector<std::vector<double>> values;  ///< values[i][k]: signal i at point k
  std::vector<std::optional<double>> score;
  std::vector<int64_t> count;
};

/// Buckets `rows` (oldest first, from <= ts < to) into [from + k*step, from + (k+1)*step). step >= 1.
HistorySeries downsample(const std::vector<store::TelemetryRow>& rows,
                         const std::vector<std::size_t>& signals, int64_t from, int64_t to, int64_t step);

/// The step that gives at most `max_points` buckets over [from, to), at least 1 ms.
int64_t auto_step(int64_t from, int64_t to, int64_t max_points);

/// {"from","to","step","ts":[...],"signals":{"name":[...|null]},"score":[...|null],"count":[...]}, signals
/// under their `catalog` names.
std::string series_to_json(const HistorySeries& s, const catalog::Catalog& catalog);

}  // namespace fleettwin::api
