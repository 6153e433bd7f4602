#pragma once

// Helpers the stage tests share: records as a stage reads them, and a producer that keeps what it is sent.

#include <string>
#include <utility>
#include <vector>

#include "log/log.h"

namespace fleettwin::testing {

/// A record of `topic` keyed by `key` carrying `value` (JSON documents: commands, answers).
inline log::Record json_record(const char* topic, const std::string& key, std::string value) {
  log::Record r;
  r.topic = topic;
  r.key = key;
  r.value = std::move(value);
  return r;
}

/// Collects what a stage writes.
class CaptureProducer final : public log::Producer {
 public:
  void send(log::OutRecord record, DeliveryCallback) override { records.push_back(std::move(record)); }
  int64_t flush(std::chrono::milliseconds) override { return 0; }
  std::vector<log::OutRecord> records;
};

}  // namespace fleettwin::testing
