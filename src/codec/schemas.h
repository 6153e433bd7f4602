#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "core/alert.h"

namespace fleettwin::codec {

// Avro values of fleet.scores and fleet.alerts (DESIGN.md §4 Topics), in the Confluent wire format, beside
// CarTelemetry in codec/avro.h. Each schema text is generated once and is what gets registered.

/// How far one signal was from what the model expected, one of an AnomalyScore's top contributors.
struct SignalDeviation {
  std::string signal;
  double deviation = 0;
  bool operator==(const SignalDeviation&) const = default;
};

/// One scored telemetry event (fleet.scores): the score stage writes one per CarTelemetry it reads. Core
/// has no such type because only the log carries it; the twin keeps the latest as its health. Plain value.
struct AnomalyScore {
  std::string car;
  int64_t ts = 0;   ///< ms, device time of the scored event
  int64_t seq = 0;  ///< seq of the scored event
  double score = 0;
  double threshold = 0;
  std::vector<SignalDeviation> top_signals;
  std::string model_version;
  /// The car is in anomaly alert after this event (the score stage's hysteresis rule, ml::AlertStates): an
  /// alert raised by this event counts, one cleared by it does not. Gives the event its status
  /// (core::score_status). Always false on a shadow model's score and on records written before the field.
  bool in_alert = false;
  bool operator==(const AnomalyScore&) const = default;
};

/// record io.fleettwin.AnomalyScore {car string, ts long (timestamp-millis), seq long, score double,
/// threshold double, top_signals array<record SignalDeviation {signal string, deviation double}>,
/// model_version string, in_alert boolean}; fields after seq have defaults. in_alert was appended later
/// (default false): a record written before it (no byte after model_version) decodes with in_alert false.
const std::string& anomaly_score_schema();

/// record io.fleettwin.Alert {id string, car string, kind string, raised boolean, ts long
/// (timestamp-millis), score double, threshold double, signals array<string>, model_version string};
/// fields after ts have defaults. core::Alert::acknowledged is store state, not part of the event.
const std::string& alert_schema();

/// Appends `s` in the Confluent wire format with anomaly_score_schema().
void encode_avro_anomaly_score(const AnomalyScore& s, int32_t schema_id, std::string& out);
/// Decodes what encode_avro_anomaly_score wrote. Truncation, bad magic byte, malformed varints, bad
/// lengths and trailing bytes are errors. Either pointer may be null; `s` is partly written on failure.
bool decode_avro_anomaly_score(std::string_view in, AnomalyScore& s, int32_t* schema_id, std::string* error);

/// Appends `a` in the Confluent wire format with alert_schema(); `acknowledged` is not written.
void encode_avro_alert(const core::Alert& a, int32_t schema_id, std::string& out);
/// As decode_avro_anomaly_score; `a.acknowledged` comes back false.
bool decode_avro_alert(std::string_view in, core::Alert& a, int32_t* schema_id, std::string* error);

// ---- AggregateResult (fleet.aggregates) ----------------------------------------------------------------

/// One column of a window result: "<signal>_<function>" (or "count") and its value, NaN when the window had
/// no value of the signal (written as Avro null).
struct AggregateValue {
  std::string column;
  double value = std::numeric_limits<double>::quiet_NaN();
};

/// One window result as fleet.aggregates carries it (the aggregate stage writes it, the sink upserts it by
/// (aggregate, group, window_start), keeping the highest revision). Plain value.
struct AggregateResult {
  std::string aggregate;
  std::string group;  ///< the car id, "fleet", or the attribute's value
  int64_t window_start = 0;
  int64_t window_end = 0;  ///< exclusive
  int32_t revision = 1;
  bool final = false;
  int64_t count = 0;
  std::vector<AggregateValue> values;
};

/// Bounds the decoder holds a record to (a record of the log is outside input): an aggregate name is
/// [a-z0-9_]{1,64} (aggregate::Definition), a group a car id or an attribute value, and a definition has at
/// most 64 signals of at most 9 functions each.
inline constexpr std::size_t kMaxAggregateNameBytes = 64;
inline constexpr std::size_t kMaxAggregateGroupBytes = 256;
inline constexpr std::size_t kMaxAggregateColumns = 1024;
inline constexpr std::size_t kMaxAggregateColumnBytes = 160;

/// record io.fleettwin.AggregateResult {aggregate string, group string, window_start long (timestamp-millis),
/// window_end long (timestamp-millis), revision int, final boolean, count long, values
/// array<record AggregateValue {column string, value union{null, double}}>}. Values are named, not
/// positional: a reader needs no copy of the definition, and a definition that gains a column stays
/// readable by an older consumer.
const std::string& aggregate_result_schema();

/// Appends `r` in the Confluent wire format with aggregate_result_schema(); a NaN value is written as null.
void encode_avro_aggregate_result(const AggregateResult& r, int32_t schema_id, std::string& out);
/// Decodes what encode_avro_aggregate_result wrote, refusing what no aggregate stage writes: truncation, bad
/// magic byte, malformed varints, a bad union branch, trailing bytes, an empty or oversized name, group or
/// column (the bounds above), more than kMaxAggregateColumns values, window_end <= window_start, revision <
/// 1, count < 0. Either pointer may be null; `r` is partly written on failure.
bool decode_avro_aggregate_result(std::string_view in, AggregateResult& r, int32_t* schema_id,
                                  std::string* error);
/// The record key of a result on fleet.aggregates: "<aggregate>|<group>|<window_start>", so compaction and
/// the partitioner see one key per window, whatever its revision.
std::string aggregate_result_key(std::string_view aggregate, std::string_view group, int64_t window_start);

}  // namespace fleettwin::codec
