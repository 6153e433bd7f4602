#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "log/log.h"

namespace fleettwin::api {

/// What GET /api/v1/dlq serves: the newest records of the DLQ topics (core::topics::kDlqTopics), read from
/// the log by the API's background thread (LiveFeed), and how many it has read per stage and reason since
/// the API started (it starts at the oldest record the log retains, so on Kafka that covers the topics'
/// retention). Reading the log, not the store, means the DLQ is visible with any store and in every mode,
/// and that a record the sink itself refused (its store might be the problem) is visible too.
///
/// Bounded: the newest kCapacity records, each with at most kMaxValueBytes of its value, kMaxHeaders headers
/// of at most kMaxHeaderBytes each; at most kMaxCounts stage/reason pairs (the rest count as `_other`).
/// keep() from the feed's thread, list()/counts() from HTTP workers: locked inside.
class DlqRecent {
 public:
  static constexpr std::size_t kCapacity = 1000;
  static constexpr std::size_t kMaxValueBytes = 4096;
  static constexpr std::size_t kMaxHeaders = 16;
  static constexpr std::size_t kMaxHeaderBytes = 512;
  static constexpr std::size_t kMaxCounts = 256;

  /// One DLQ record as kept.
  struct Entry {
    std::string topic;
    int32_t partition = 0;
    int64_t offset = 0;
    int64_t timestamp_ms = 0;
    std::string key;
    std::string stage;     ///< error.stage
    std::string reason;    ///< error.reason
    std::string value;     ///< the first kMaxValueBytes of the original bytes
    std::size_t size = 0;  ///< the value's full size
    std::vector<log::Header> headers;
  };

  void keep(const log::Record& r);
  /// Newest first (by record time, then by the order read), at most `limit`, of `stage` and `reason` when
  /// they are not empty.
  std::vector<Entry> list(std::size_t limit, std::string_view stage, std::string_view reason) const;
  /// Records read per (stage, reason).
  std::map<std::pair<std::string, std::string>, int64_t> counts() const;

 private:
  mutable std::mutex _mu;
  std::deque<Entry> _entries;  ///< oldest first
  std::map<std::pair<std::string, std::string>, int64_t> _counts;
};

/// The JSON object of one entry: its place on the log, stage, reason, detail, key, time, headers, and the
/// original bytes as `value` with `encoding` "text" (valid UTF-8 without control characters other than tab,
/// CR and LF) or "base64"; `size` is the full size and `truncated` says whether `value` holds less.
std::string dlq_entry_json(const DlqRecent::Entry& e);

/// Standard base64 (RFC 4648, with padding).
std::string base64(std::string_view bytes);

}  // namespace fleettwin::api
