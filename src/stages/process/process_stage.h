#pragma once

#include <map>
#include <memory>

#include "codec/avro.h"
#include "codec/json.h"
#include "core/metrics.h"
#include "stages/dead_letters.h"
#include "stages/stage.h"

namespace fleettwin::stages {

/// The process stage: validates raw JSON from fleet.telemetry.raw and writes Avro CarTelemetry to
/// fleet.telemetry; anything it cannot accept goes to fleet.telemetry.dlq with the original bytes and the
/// reason in headers. The job KSQL did in the reference system. Runs on its runner's thread.
class ProcessStage final : public Stage {
 public:
  struct Options {
    /// Registry id written in the Confluent wire format: that of the catalog's schema (TelemetryAvro).
    int32_t telemetry_schema_id = 1;
    std::size_t max_payload_bytes = 16384;
    codec::UnknownFields unknown_fields = codec::UnknownFields::kDrop;
  };
  ProcessStage(Options options, const std::shared_ptr<const catalog::Catalog>& catalog,
               core::Metrics& metrics);
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;

 private:
  void count_flags_and_unknown_fields();

  Options _options;
  codec::TelemetryDecoder _decoder;
  codec::TelemetryAvro
      _avro;  ///< the catalog's CarTelemetry schema, the one registered under telemetry_schema_id
  core::Telemetry _t;
  core::Metrics& _metrics;
  core::Counter& _valid;
  DeadLetters _dead_letters;
  std::vector<core::Counter*> _out_of_range;  ///< per catalog signal
  // Per unknown key, up to kMaxUnknownNames names; later names (and names unfit for a label) share "_other":
  // keys come from the cars, and each distinct one would otherwise be a new time series.
  static constexpr std::size_t kMaxUnknownNames = 64;
  std::map<std::string, core::Counter*, std::less<>> _unknown_by_name;
};

}  // namespace fleettwin::stages
