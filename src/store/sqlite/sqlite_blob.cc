#include "store/sqlite/sqlite_blob.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>

namespace fleettwin::store {
namespace {

// Bump when the field list changes; a decoder that sees another value refuses the blob rather than
// misreading it.
constexpr uint8_t kTwinFormat = 1;

class Writer {
 public:
  void u8(uint8_t v) { _out.push_back(static_cast<char>(v)); }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void f64(double v) { u64(std::bit_cast<uint64_t>(v)); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      u8(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    u8(static_cast<uint8_t>(v));
  }
  void str(std::string_view s) {
    varint(s.size());
    _out.append(s);
  }
  std::string take() { return std::move(_out); }

 private:
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::string _out;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : _in(in) {}
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(_in[_pos++]);
  }
  int64_t i64() { return static_cast<int64_t>(u64()); }
  double f64() { return std::bit_cast<double>(u64()); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = u8();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    fail("varint too long");
  }
  std::string str() {
    uint64_t n = varint();
    need(n);
    std::string s(_in.substr(_pos, n));
    _pos += n;
    return s;
  }
  /// A count of items each at least `min_item_bytes` long: bounded by what is left, so a corrupt count
  /// cannot make the caller reserve or loop unboundedly.
  uint64_t count(size_t min_item_bytes) {
    uint64_t n = varint();
    if (n > (_in.size() - _pos) / min_item_bytes) fail("count exceeds blob");
    return n;
  }
  void finish() const {
    if (_pos != _in.size()) fail("trailing bytes");
  }

 private:
  void need(uint64_t n) const {
    if (n > _in.size() - _pos) fail("truncated");
  }
  uint64_t u64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(_in[_pos + i])) << (8 * i);
    _pos += 8;
    return v;
  }
  [[noreturn]] static void fail(const char* why) {
    throw std::runtime_error(std::string("sqlite store: malformed blob: ") + why);
  }
  std::string_view _in;
  size_t _pos = 0;
};

void write_map(Writer& w, const std::map<std::string, std::string>& m) {
  w.varint(m.size());
  for (const auto& [k, v] : m) {
    w.str(k);
    w.str(v);
  }
}

std::map<std::string, std::string> read_map(Reader& r) {
  std::map<std::string, std::string> m;
  uint64_t n = r.count(2);
  for (uint64_t i = 0; i < n; ++i) {
    std::string k = r.str();
    m.emplace(std::move(k), r.str());
  }
  return m;
}

void write_list(Writer& w, const std::vector<std::string>& list) {
  w.varint(list.size());
  for (const auto& s : list) w.str(s);
}

std::vector<std::string> read_list(Reader& r) {
  std::vector<std::string> list(r.count(1));
  for (auto& s : list) s = r.str();
  return list;
}

}  // namespace

std::string encode_twin_rest(const core::Twin& t) {
  Writer w;
  w.u8(kTwinFormat);
  w.str(t.reported.car);
  for (double v : t.reported.values) w.f64(v);
  w.u8(t.has_reported ? 1 : 0);
  write_map(w, t.desired);
  write_map(w, t.reported_settings);
  for (int64_t ts : t.metadata) w.i64(ts);
  w.f64(t.health.threshold);
  w.i64(t.health.since);
  write_list(w, t.health.top_signals);
  w.str(t.health.model_version);
  w.i64(t.first_seen);
  w.i64(t.messages);
  w.f64(t.distance_km);
  return w.take();
}

void decode_twin_rest(std::string_view blob, core::Twin& t) {
  Reader r(blob);
  if (uint8_t format = r.u8(); format != kTwinFormat) {
    throw std::runtime_error("sqlite store: unknown twin blob format " + std::to_string(format));
  }
  t.reported.car = r.str();
  for (double& v : t.reported.values) v = r.f64();
  t.has_reported = r.u8() != 0;
  t.desired = read_map(r);
  t.reported_settings = read_map(r);
  for (int64_t& ts : t.metadata) ts = r.i64();
  t.health.threshold = r.f64();
  t.health.since = r.i64();
  t.health.top_signals = read_list(r);
  t.health.model_version = r.str();
  t.first_seen = r.i64();
  t.messages = r.i64();
  t.distance_km = r.f64();
  r.finish();
}

std::string encode_strings(const std::vector<std::string>& list) {
  Writer w;
  write_list(w, list);
  return w.take();
}

std::vector<std::string> decode_strings(std::string_view blob) {
  Reader r(blob);
  auto list = read_list(r);
  r.finish();
  return list;
}

}  // namespace fleettwin::store
