#pragma once

// How the API shows stored window aggregates (store/aggregate_rows.h): the JSON of
// GET /api/v1/aggregates/{name}, and the answer of a car's history route for a range older than the raw
// history's retention, where the per-car aggregate windows stand in for the raw rows. Pure functions over
// values, called from any HTTP worker.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "aggregate/definition.h"
#include "catalog/catalog.h"
#include "store/aggregate_rows.h"

namespace fleettwin::api {

/// An aggregate name as definitions allow it ([a-z0-9_]{1,64}).
bool valid_aggregate_name(std::string_view name);

/// The columns to list for `rows` of an aggregate: those of its definition when known (`def` not null), else
/// the value names of the rows in order of first appearance.
std::vector<std::string> aggregate_columns(const aggregate::Definition* def,
                                           const std::vector<store::AggregateRow>& rows);

/// {"aggregate","columns":[...],"windows":[{"group","start","end","revision","final","count",
/// "values":{column: number|null}}],"truncated":bool}. A column a window lacks is null in it.
std::string aggregates_to_json(std::string_view name, const std::vector<std::string>& columns,
                               const std::vector<store::AggregateRow>& rows, bool truncated);

/// The window starts a fleet-wide total of `def` over [from, to) reads: every window start in the range
/// (aligned on the advance, as the engine aligns them) when there are at most `max_points`, else every k-th
/// with k the smallest stride that keeps to `max_points` (downsampled: a long range still shows, at a
/// bounded cost per request). `stride` gets k. Empty when the range holds no window start.
std::vector<int64_t> total_window_starts(const aggregate::Definition& def, int64_t from, int64_t to,
                                         std::size_t max_points, int64_t* stride);

/// One window start's total over the groups of an aggregate: the groups read and their events.
struct WindowTotal {
  int64_t start = 0;
  int64_t end = 0;
  int64_t groups = 0;
  int64_t count = 0;
};

/// Adds `rows` (windows of one start) to `total`; a per-car definition's "fleet" row (none is written, but
/// the store is outside input) is not a car and is left out.
void add_to_total(const aggregate::Definition& def, const std::vector<store::AggregateRow>& rows,
                  WindowTotal& total);

/// {"aggregate","window","advance","stride","sampled","windows":[{"start","end","groups","count"}],
/// "truncated"}.
std::string totals_to_json(const aggregate::Definition& def, int64_t stride,
                           const std::vector<WindowTotal>& totals, bool truncated);

/// The per-car aggregate that best stands in for raw history of `signals` (catalog indexes): the one with a
/// column for most of them, then the shortest window; null when no definition groups by car.
const aggregate::Definition* history_aggregate(const std::vector<aggregate::Definition>& defs,
                                               const std::vector<std::size_t>& signals);

/// The column of `def` that stands for signal `signal` (its mean if it has one, else the median, last, max,
/// min, sum, p95, p99); empty when the definition has none for it.
std::string history_column(const aggregate::Definition& def, std::size_t signal);

/// A history answer built from aggregate windows, in the shape of series_to_json (history.h) so a chart
/// draws it unchanged: "ts" the window starts, each requested signal's column (null where a window has none),
/// "score" null, "count" the events per window, "step" the window's advance; plus "source":"aggregates",
/// "aggregate" and "columns" ({signal: column}). Without the closing brace: the caller appends its fields.
std::string aggregate_series_json(const aggregate::Definition& def,
                                  const std::vector<store::AggregateRow>& rows,
                                  const std::vector<std::size_t>& signals, const catalog::Catalog& catalog,
                                  int64_t from, int64_t to);

}  // namespace fleettwin::api
