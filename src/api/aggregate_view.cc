#include "api/aggregate_view.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "codec/json_writer.h"

namespace fleettwin::api {
namespace {

/// The value of `column` in `row`, NaN when the row has none.
double value_of(const store::AggregateRow& row, std::string_view column) {
  for (const auto& [name, value] : row.values)
    if (name == column) return value;
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

bool valid_aggregate_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::vector<int64_t> total_window_starts(const aggregate::Definition& def, int64_t from, int64_t to,
                                         std::size_t max_points, int64_t* stride) {
  std::vector<int64_t> out;
  *stride = 1;
  const int64_t step = def.advance_ms;
  if (step <= 0 || from >= to || max_points == 0) return out;
  // The first aligned start at or after `from` (floor division: negative times align too).
  int64_t first = from / step * step;
  if (first < from) first += step;
  if (first >= to) return out;
  const int64_t n = (to - 1 - first) / step + 1;
  const auto points = static_cast<int64_t>(max_points);
  *stride = (n + points - 1) / points;
  for (int64_t i = 0; i < n; i += *stride) out.push_back(first + i * step);
  return out;
}

void add_to_total(const aggregate::Definition& def, const std::vector<store::AggregateRow>& rows,
                  WindowTotal& total) {
  for (const auto& row : rows) {
    if (def.grouping == aggregate::Grouping::kCar && row.group == "fleet") continue;
    ++total.groups;
    total.count += row.count;
  }
}

std::string totals_to_json(const aggregate::Definition& def, int64_t stride,
                           const std::vector<WindowTotal>& totals, bool truncated) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object()
      .key("aggregate")
      .string(def.name)
      .key("window")
      .integer(def.size_ms)
      .key("advance")
      .integer(def.advance_ms)
      .key("stride")
      .integer(stride)
      .key("sampled")
      .boolean(stride > 1)
      .key("windows")
      .begin_array();
  for (const auto& t : totals) {
    w.begin_object()
        .key("start")
        .integer(t.start)
        .key("end")
        .integer(t.end)
        .key("groups")
        .integer(t.groups)
        .key("count")
        .integer(t.count)
        .end_object();
  }
  w.end_array().key("truncated").boolean(truncated).end_object();
  return out;
}

std::vector<std::string> aggregate_columns(const aggregate::Definition* def,
                                           const std::vector<store::AggregateRow>& rows) {
  if (def != nullptr) return def->columns();
  std::vector<std::string> out;
  std::set<std::string, std::less<>> seen;
  for (const auto& row : rows) {
    for (const auto& v : row.values)
      if (seen.insert(v.first).second) out.push_back(v.first);
  }
  return out;
}

std::string aggregates_to_json(std::string_view name, const std::vector<std::string>& columns,
                               const std::vector<store::AggregateRow>& rows, bool truncated) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("aggregate").string(name).key("columns").begin_array();
  for (const auto& c : columns) w.string(c);
  w.end_array().key("windows").begin_array();
  for (const auto& row : rows) {
    w.begin_object()
        .key("group")
        .string(row.group)
        .key("start")
        .integer(row.window_start_ms)
        .key("end")
        .integer(row.window_end_ms)
        .key("revision")
        .integer(row.revision)
        .key("final")
        .boolean(row.final)
        .key("count")
        .integer(row.count)
        .key("values")
        .begin_object();
    for (const auto& c : columns) w.key(c).number(value_of(row, c));  // NaN (none) is null
    w.end_object().end_object();
  }
  w.end_array().key("truncated").boolean(truncated).end_object();
  return out;
}

std::string history_column(const aggregate::Definition& def, std::size_t signal) {
  using F = aggregate::Function;
  static constexpr std::array kPreference{F::kMean, F::kP50, F::kLast, F::kMax,
                                          F::kMin,  F::kSum, F::kP95,  F::kP99};
  for (const auto& s : def.signals) {
    if (s.signal != signal) continue;
    for (const F f : kPreference) {
      if (std::find(s.functions.begin(), s.functions.end(), f) != s.functions.end())
        return s.name + "_" + std::string(aggregate::function_name(f));
    }
  }
  return {};
}

const aggregate::Definition* history_aggregate(const std::vector<aggregate::Definition>& defs,
                                               const std::vector<std::size_t>& signals) {
  const aggregate::Definition* best = nullptr;
  std::size_t best_covered = 0;
  for (const auto& def : defs) {
    if (def.grouping != aggregate::Grouping::kCar) continue;
    const auto covered = static_cast<std::size_t>(std::count_if(
        signals.begin(), signals.end(), [&](std::size_t s) { return !history_column(def, s).empty(); }));
    if (best == nullptr || covered > best_covered ||
        (covered == best_covered && def.advance_ms < best->advance_ms)) {
      best = &def;
      best_covered = covered;
    }
  }
  return best;
}

std::string aggregate_series_json(const aggregate::Definition& def,
                                  const std::vector<store::AggregateRow>& rows,
                                  const std::vector<std::size_t>& signals, const catalog::Catalog& catalog,
                                  int64_t from, int64_t to) {
  std::vector<std::string> columns;
  columns.reserve(signals.size());
  for (const std::size_t s : signals) columns.push_back(history_column(def, s));
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("from").integer(from).key("to").integer(to).key("step").integer(def.advance_ms);
  w.key("ts").begin_array();
  for (const auto& r : rows) w.integer(r.window_start_ms);
  w.end_array().key("signals").begin_object();
  for (std::size_t i = 0; i < signals.size(); ++i) {
    w.key(catalog[signals[i]].name).begin_array();
    for (const auto& r : rows)
      w.number(columns[i].empty() ? std::numeric_limits<double>::quiet_NaN() : value_of(r, columns[i]));
    w.end_array();
  }
  w.end_object().key("score").begin_array();
  for (std::size_t k = 0; k < rows.size(); ++k) w.null();
  w.end_array().key("count").begin_array();
  for (const auto& r : rows) w.integer(r.count);
  w.end_array().key("source").string("aggregates").key("aggregate").string(def.name);
  w.key("columns").begin_object();
  for (std::size_t i = 0; i < signals.size(); ++i) {
    w.key(catalog[signals[i]].name);
    columns[i].empty() ? w.null() : w.string(columns[i]);
  }
  w.end_object().end_object();
  out.pop_back();
  return out;
}

}  // namespace fleettwin::api
