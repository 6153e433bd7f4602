#include "log/log.h"

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

int32_t partition_for_key(std::string_view key, int32_t partitions) {
  uint32_t h = 2166136261u;
  for (unsigned char c : key) {
    h ^= c;
    h *= 16777619u;
  }
  return static_cast<int32_t>(h % static_cast<uint32_t>(partitions));
}

}  // namespace fleettwin::log
