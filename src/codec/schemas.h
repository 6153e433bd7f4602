#pragma once

#include <cstdint>
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
  bool operator==(const AnomalyScore&) const = default;
};

/// record io.fleettwin.AnomalyScore {car string, ts long (timestamp-millis), seq long, score double,
/// threshold double, top_signals array<record SignalDeviation {signal string, deviation double}>,
/// model_version string}; fields after seq have defaults.
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

}  // namespace fleettwin::codec
