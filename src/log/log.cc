#include "log/log.h"

#include <algorithm>

namespace fleettwin::log {

std::optional<std::string_view> Record::header(std::string_view k) const {
  for (const auto& h : headers)
    if (h.key == k) return std::string_view(h.value);
  return std::nullopt;
}

Offsets next_offsets(const std::vector<Record>& batch) {
  Offsets out;
  for (const auto& r : batch) {
    auto& o = out[TopicPartition{r.topic, r.partition}];
    if (r.offset + 1 > o) o = r.offset + 1;
  }
  return out;
}

int64_t group_lag(Log& log, const std::string& group, const std::string& topic) {
  const auto ends = log.end_offsets(topic);
  const auto committed = log.committed_offsets(group, topic);
  int64_t lag = 0;
  for (std::size_t p = 0; p < ends.size(); ++p) {
    const int64_t done = p < committed.size() ? std::max<int64_t>(committed[p], 0) : 0;
    lag += std::max<int64_t>(0, ends[p] - done);
  }
  return lag;
}

int32_t partition_for_key(std::string_view key, int32_t partitions) {
  uint32_t h = 2166136261u;
  for (unsigned char c : key) {
    h ^= c;
    h *= 16777619u;
  }
  return static_cast<int32_t>(h % static_cast<uint32_t>(partitions));
}

}  // namespace fleettwin::log
