#include "aggregate/partial_codec.h"

#include "aggregate/state_bytes.h"

namespace fleettwin::aggregate {

namespace {
constexpr uint64_t kPartialVersion = 1;
constexpr std::size_t kMaxAggregateName = 64;
/// A window's bytes: its signals (at most 64) with their sketches (at most 2 x 2048 buckets each).
constexpr std::size_t kMaxWindowBytes = 8U << 20;
}  // namespace

std::string encode_partial(const Partial& p) {
  std::string out;
  StateWriter w(out);
  w.u64(kPartialVersion);
  w.bytes(p.aggregate);
  w.bytes(p.group);
  w.i64(p.source);
  w.i64(p.event_time);
  w.i64(p.window_start);
  w.i64(p.count);
  w.bytes(p.window);
  return out;
}

bool decode_partial(std::string_view bytes, Partial& p, std::string* error) {
  StateReader r(bytes);
  uint64_t version = 0;
  int64_t source = 0;
  bool ok = r.u64(version) && (version == kPartialVersion || r.fail("unknown partial version")) &&
            r.bytes(p.aggregate, kMaxAggregateName, "aggregate name too long") &&
            r.bytes(p.group, kMaxGroupBytes, "group name too long") && r.i64(source) &&
            ((source >= 0 && source <= INT32_MAX) || r.fail("source partition out of range")) &&
            r.i64(p.event_time) && r.i64(p.window_start) && r.i64(p.count) &&
            r.bytes(p.window, kMaxWindowBytes, "window state too long") &&
            (r.at_end() || r.fail("trailing bytes"));
  if (!ok) {
    if (error) *error = r.error();
    return false;
  }
  p.source = static_cast<int32_t>(source);
  return true;
}

std::string partial_key(const Partial& p) {
  return p.aggregate + "|" + p.group + "|" + std::to_string(p.window_start) + "|" + std::to_string(p.source);
}

std::string partial_group_key(std::string_view aggregate, std::string_view group) {
  std::string key(aggregate);
  key += '|';
  key += group;
  return key;
}

}  // namespace fleettwin::aggregate
