#include "api/dlq_recent.h"

#include <simdjson.h>

#include <algorithm>

#include "codec/json_writer.h"
#include "core/topics.h"

namespace fleettwin::api {

namespace t = core::topics;

namespace {

std::string header_or(const log::Record& r, std::string_view key, std::string_view fallback) {
  const auto h = r.header(key);
  return std::string(h ? h->substr(0, 64) : fallback);
}

bool printable(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\n' && c != '\r') || u == 0x7f) return false;
  }
  return simdjson::validate_utf8(s.data(), s.size());
}

/// `value` cut to at most `max` bytes, not in the middle of a UTF-8 sequence when it is text.
std::string_view cut(std::string_view value, std::size_t max) {
  if (value.size() <= max) return value;
  std::size_t n = max;
  // Back off over continuation bytes (10xxxxxx) and the lead byte of the cut sequence.
  while (n > 0 && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) --n;
  return value.substr(0, n);
}

}  // namespace

void DlqRecent::keep(const log::Record& r) {
  Entry e;
  e.topic = r.topic;
  e.partition = r.partition;
  e.offset = r.offset;
  e.timestamp_ms = r.timestamp_ms;
  e.key = std::string(cut(r.key, 128));
  e.stage = header_or(r, t::kHeaderErrorStage, "unknown");
  e.reason = header_or(r, t::kHeaderErrorReason, "unknown");
  e.value = std::string(cut(r.value, kMaxValueBytes));
  e.size = r.value.size();
  for (const auto& h : r.headers) {
    if (e.headers.size() == kMaxHeaders) break;
    e.headers.push_back({std::string(cut(h.key, 64)), std::string(cut(h.value, kMaxHeaderBytes))});
  }
  std::lock_guard lock(_mu);
  // Stage and reason are the writers' fixed strings, but anyone can write a DLQ topic: bound the pairs.
  auto pair = std::pair(e.stage, e.reason);
  if (_counts.size() >= kMaxCounts && !_counts.contains(pair)) pair = {"_other", "_other"};
  ++_counts[pair];
  _entries.push_back(std::move(e));
  if (_entries.size() > kCapacity) _entries.pop_front();
}

std::vector<DlqRecent::Entry> DlqRecent::list(std::size_t limit, std::string_view stage,
                                              std::string_view reason) const {
  std::vector<const Entry*> match;
  std::lock_guard lock(_mu);
  for (auto it = _entries.rbegin(); it != _entries.rend(); ++it)
    if ((stage.empty() || it->stage == stage) && (reason.empty() || it->reason == reason))
      match.push_back(&*it);
  // Read order is newest last per partition; across partitions and topics the record time decides.
  std::stable_sort(match.begin(), match.end(),
                   [](const Entry* a, const Entry* b) { return a->timestamp_ms > b->timestamp_ms; });
  std::vector<Entry> out;
  for (const Entry* e : match) {
    if (out.size() == limit) break;
    out.push_back(*e);
  }
  return out;
}

std::map<std::pair<std::string, std::string>, int64_t> DlqRecent::counts() const {
  std::lock_guard lock(_mu);
  return _counts;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string dlq_entry_json(const DlqRecent::Entry& e) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object();
  w.key("topic").string(e.topic).key("partition").integer(e.partition).key("offset").integer(e.offset);
  w.key("timestamp").integer(e.timestamp_ms).key("key").string(e.key);
  w.key("stage").string(e.stage).key("reason").string(e.reason);
  std::string_view detail;
  for (const auto& h : e.headers)
    if (h.key == t::kHeaderErrorDetail) detail = h.value;
  w.key("detail").string(detail);
  const bool text = printable(e.value);
  w.key("encoding").string(text ? "text" : "base64");
  w.key("value").string(text ? e.value : base64(e.value));
  w.key("size").integer(static_cast<int64_t>(e.size));
  w.key("truncated").boolean(e.value.size() < e.size);
  w.key("headers").begin_object();
  for (const auto& h : e.headers) w.key(h.key).string(h.value);
  w.end_object();
  w.end_object();
  return out;
}

}  // namespace fleettwin::api
