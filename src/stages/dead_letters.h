#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/metrics.h"
#include "log/log.h"

namespace fleettwin::stages {

/// The DLQ topic of an input topic: `<topic>.dlq`, except fleet.telemetry.raw, whose DLQ has always been
/// fleet.telemetry.dlq (DESIGN.md §4): that topic is the DLQ of both telemetry topics (core/topics.h says
/// why), and every DLQ topic is one of core::topics::kDlqTopics.
std::string dlq_of(std::string_view input_topic);

/// Writes the records a stage cannot use to the DLQ of their input, with the original key, value and
/// headers, plus `error.reason`, `error.stage`, `error.detail` and `source.offset` headers. Records go
/// through the stage's own producer, so the runner's flush-before-commit covers them: an input offset is
/// committed only after its DLQ record is in the log. Counts `fleettwin_dlq_total{stage}` and
/// `fleettwin_dlq_reason_total{stage,reason}`. Reasons are fixed strings chosen by the code (they become
/// metric labels), never text from the record. One per stage instance, used from its thread.
class DeadLetters {
 public:
  DeadLetters(core::Metrics& metrics, std::string stage);
  void send(const log::Record& r, std::string_view reason, std::string_view detail, log::Producer& out);
  /// The same for a record that has not been in the log yet (the bridge's input): `source` names where it
  /// came from (an MQTT topic) and is written as the `source` header.
  void send(std::string_view dlq_topic, log::OutRecord o, std::string_view reason, std::string_view detail,
            std::string_view source, log::Producer& out);
  int64_t total() const { return _total.value(); }

 private:
  void count(std::string_view reason);

  core::Metrics& _metrics;
  std::string _stage;
  core::Counter& _total;
  std::map<std::string, core::Counter*, std::less<>> _by_reason;  // registry lookups take a lock
};

}  // namespace fleettwin::stages
