#include "store/twin_blob.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>

namespace fleettwin::store {
namespace {

// Bump when the field list changes; a decoder that sees another value refuses the blob rather than
// misreading it. 1: the 18 cardata-v1 signals by position; 2: signals by catalog field name.
enum BlobByte : uint8_t {
  kTwinFormatPositional = 1,
  kTwinFormat = 2,
  kTwinFormatSite = 3,   ///< format 2 and the twin's site at the end (a site's twin on central)
  kFlagged = 1,          ///< per-signal flags byte: the reading is out of range
  kAggregateValues = 1,  ///< format byte of encode_aggregate_values
};

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
  std::string str() { return std::string(view()); }
  /// A string without a copy: valid as long as the blob.
  std::string_view view() {
    uint64_t n = varint();
    need(n);
    std::string_view s = _in.substr(_pos, n);
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
    throw std::runtime_error(std::string("store: malformed twin blob: ") + why);
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

/// Maps the signal names of a blob to the reader's catalog. Names usually come in the reader's catalog
/// order, so the next index is tried before the hash lookup.
class SignalResolver {
 public:
  explicit SignalResolver(const catalog::Catalog& c) : _catalog(c) {}
  std::optional<std::size_t> index(std::string_view field) {
    if (_next < _catalog.size() && _catalog[_next].field == field) return _next++;
    auto i = _catalog.find(field);
    if (i) _next = *i + 1;
    return i;
  }

 private:
  const catalog::Catalog& _catalog;
  std::size_t _next = 0;
};

void size_signals(core::Twin& t, std::size_t n) {
  t.reported.values.assign(n, core::kAbsent);
  t.reported.out_of_range.clear();
  t.metadata.assign(n, 0);
}

// Only what a twin holds for a signal is written: a fleet catalog may have hundreds of signals a car never
// sends. Count first (the reader bounds it by the blob's size), then name, value, metadata time and flags.
void write_signals(Writer& w, const core::Twin& t, const catalog::Catalog& c) {
  const std::size_t n = std::min({c.size(), t.reported.values.size(), t.metadata.size()});
  auto held = [&](std::size_t i) {
    return !core::absent(t.reported.values[i]) || t.metadata[i] != 0 || t.reported.flagged(i);
  };
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i) count += held(i) ? 1 : 0;
  w.varint(count);
  for (std::size_t i = 0; i < n; ++i) {
    if (!held(i)) continue;
    w.str(c[i].field);
    w.f64(t.reported.values[i]);
    w.i64(t.metadata[i]);
    w.u8(t.reported.flagged(i) ? kFlagged : 0);
  }
}

void read_signals(Reader& r, core::Twin& t, const catalog::Catalog& c) {
  SignalResolver resolve(c);
  const uint64_t n = r.count(1 + 8 + 8 + 1);
  for (uint64_t k = 0; k < n; ++k) {
    const std::string_view field = r.view();
    const double value = r.f64();
    const int64_t ts = r.i64();
    const uint8_t flags = r.u8();
    const auto i = resolve.index(field);
    if (!i) continue;  // a signal the reader's catalog no longer has
    t.reported.values[*i] = value;
    t.metadata[*i] = ts;
    if ((flags & kFlagged) != 0) t.reported.out_of_range.push_back(static_cast<uint16_t>(*i));
  }
  std::sort(t.reported.out_of_range.begin(), t.reported.out_of_range.end());
}

void read_rest(Reader& r, core::Twin& t, bool with_site = false) {
  t.health.threshold = r.f64();
  t.health.since = r.i64();
  t.health.top_signals = read_list(r);
  t.health.model_version = r.str();
  t.first_seen = r.i64();
  t.messages = r.i64();
  t.distance_km = r.f64();
  if (with_site) t.site = r.str();
  r.finish();
}

/// Format 1: the built-in catalog's signals by position, values before the settings, times after them.
void decode_positional(Reader& r, core::Twin& t, const catalog::Catalog& c) {
  const catalog::Catalog& v1 = *catalog::builtin();
  std::vector<std::optional<std::size_t>> target(v1.size());
  for (std::size_t k = 0; k < v1.size(); ++k) target[k] = c.find(v1[k].field);
  for (const auto& i : target) {
    const double v = r.f64();
    if (i) t.reported.values[*i] = v;
  }
  t.has_reported = r.u8() != 0;
  t.desired = read_map(r);
  t.reported_settings = read_map(r);
  for (const auto& i : target) {
    const int64_t ts = r.i64();
    if (i) t.metadata[*i] = ts;
  }
  read_rest(r, t);
}

}  // namespace

std::string encode_twin_rest(const core::Twin& t, const catalog::Catalog& catalog) {
  Writer w;
  // Format 2 while the twin has no site: what older binaries read.
  w.u8(t.site.empty() ? kTwinFormat : kTwinFormatSite);
  w.str(t.reported.car);
  write_signals(w, t, catalog);
  w.u8(t.has_reported ? 1 : 0);
  write_map(w, t.desired);
  write_map(w, t.reported_settings);
  w.f64(t.health.threshold);
  w.i64(t.health.since);
  write_list(w, t.health.top_signals);
  w.str(t.health.model_version);
  w.i64(t.first_seen);
  w.i64(t.messages);
  w.f64(t.distance_km);
  if (!t.site.empty()) w.str(t.site);
  return w.take();
}

void decode_twin_rest(std::string_view blob, core::Twin& t, const catalog::Catalog& catalog) {
  Reader r(blob);
  const uint8_t format = r.u8();
  if (format != kTwinFormat && format != kTwinFormatSite && format != kTwinFormatPositional) {
    throw std::runtime_error("sqlite store: unknown twin blob format " + std::to_string(format));
  }
  t.reported.car = r.str();
  size_signals(t, catalog.size());
  if (format == kTwinFormatPositional) {
    decode_positional(r, t, catalog);
    return;
  }
  read_signals(r, t, catalog);
  t.has_reported = r.u8() != 0;
  t.desired = read_map(r);
  t.reported_settings = read_map(r);
  read_rest(r, t, format == kTwinFormatSite);
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

std::string encode_aggregate_values(const std::vector<std::pair<std::string, double>>& values) {
  Writer w;
  w.u8(kAggregateValues);
  w.varint(values.size());
  for (const auto& [name, value] : values) {
    w.str(name);
    w.f64(value);
  }
  return w.take();
}

std::vector<std::pair<std::string, double>> decode_aggregate_values(std::string_view blob) {
  Reader r(blob);
  if (r.u8() != kAggregateValues) throw std::runtime_error("store: unknown aggregate values format");
  std::vector<std::pair<std::string, double>> out(r.count(9));  // a name's length byte and 8 value bytes
  for (auto& [name, value] : out) {
    name = r.str();
    value = r.f64();
  }
  r.finish();
  return out;
}

std::string flags_text(const core::Telemetry& t, const catalog::Catalog& catalog) {
  std::string out;
  for (const uint16_t i : t.out_of_range) {
    if (i >= catalog.size()) continue;
    if (!out.empty()) out += ',';
    out += catalog[i].field;
  }
  return out;
}

void read_flags(std::string_view text, const catalog::Catalog& catalog, core::Telemetry& t) {
  t.out_of_range.clear();
  while (!text.empty()) {
    const size_t comma = std::min(text.find(','), text.size());
    if (const auto i = catalog.find(text.substr(0, comma)))
      t.out_of_range.push_back(static_cast<uint16_t>(*i));
    text.remove_prefix(std::min(comma + 1, text.size()));
  }
  std::sort(t.out_of_range.begin(), t.out_of_range.end());
  t.out_of_range.erase(std::unique(t.out_of_range.begin(), t.out_of_range.end()), t.out_of_range.end());
}

}  // namespace fleettwin::store
