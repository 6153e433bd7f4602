#include "api/history.h"

#include "codec/json_writer.h"
#include "core/telemetry.h"

namespace fleettwin::api {

int64_t auto_step(int64_t from, int64_t to, int64_t max_points) {
  const int64_t span = to > from ? to - from : 1;
  const int64_t points = max_points > 0 ? max_points : 1;
  return std::max<int64_t>(1, (span + points - 1) / points);
}

HistorySeries downsample(const std::vector<store::TelemetryRow>& rows,
                         const std::vector<std::size_t>& signals, int64_t from, int64_t to, int64_t step) {
  HistorySeries s;
  s.from = from;
  s.to = to;
  s.step = std::max<int64_t>(1, step);
  s.signals = signals;
  s.values.resize(signals.size());
  // Per signal: a car may send any subset, so each signal's mean is over the rows that carried it.
  std::vector<double> sums(signals.size());
  std::vector<int64_t> counts(signals.size());
  int64_t bucket = -1, n = 0;
  std::optional<double> max_score;
  auto emit = [&] {
    if (n == 0) return;
    s.ts.push_back(from + bucket * s.step);
    for (std::size_t i = 0; i < signals.size(); ++i) {
      s.values[i].push_back(counts[i] > 0 ? sums[i] / static_cast<double>(counts[i]) : core::kAbsent);
    }
    s.score.push_back(max_score);
    s.count.push_back(n);
  };
  for (const auto& row : rows) {
    if (row.t.ts < from || row.t.ts >= to) continue;
    const int64_t b = (row.t.ts - from) / s.step;
    if (b != bucket) {
      emit();
      bucket = b;
      n = 0;
      max_score.reset();
      std::fill(sums.begin(), sums.end(), 0.0);
      std::fill(counts.begin(), counts.end(), 0);
    }
    ++n;
    for (std::size_t i = 0; i < signals.size(); ++i) {
      const double v = signals[i] < row.t.values.size() ? row.t.values[signals[i]] : core::kAbsent;
      if (core::absent(v)) continue;
      sums[i] += v;
      ++counts[i];
    }
    if (const auto& score = row.score; score && (!max_score || *score > *max_score)) max_score = score;
  }
  emit();
  return s;
}

std::string series_to_json(const HistorySeries& s, const catalog::Catalog& catalog) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("from").integer(s.from).key("to").integer(s.to).key("step").integer(s.step);
  w.key("ts").begin_array();
  for (auto t : s.ts) w.integer(t);
  w.end_array().key("signals").begin_object();
  for (std::size_t i = 0; i < s.signals.size(); ++i) {
    w.key(catalog[s.signals[i]].name).begin_array();
    for (double v : s.values[i]) w.number(v);
    w.end_array();
  }
  w.end_object().key("score").begin_array();
  for (const auto& v : s.score) v ? w.number(*v) : w.null();
  w.end_array().key("count").begin_array();
  for (auto c : s.count) w.integer(c);
  w.end_array().end_object();
  return out;
}

}  // namespace fleettwin::api
