// Telemetry JSON: the decoder on the process stage's hot path and the encoder the simulator publishes with.

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "codec/json.h"
#include "codec/json_writer.h"
#include "core/enum_names.h"

namespace fleettwin::codec {

static_assert(kJsonPadding >= simdjson::SIMDJSON_PADDING);

namespace {

using core::SignalType;

enum class Kind : uint8_t { kCar, kTs, kSeq, kLat, kLon, kDouble, kInt, kBool };

// The DLQ's `error.reason` header and a metrics label: stable strings.
constexpr core::EnumName<RejectReason> kRejectReasonNames[] = {
    {RejectReason::kMalformed, "malformed"},           {RejectReason::kMissingField, "missing_field"},
    {RejectReason::kWrongType, "wrong_type"},          {RejectReason::kNonFinite, "non_finite"},
    {RejectReason::kOutOfRange, "out_of_range"},       {RejectReason::kOversized, "oversized"},
    {RejectReason::kBadCarId, "bad_car_id"},           {RejectReason::kUnknownField, "unknown_field"},
    {RejectReason::kDuplicateField, "duplicate_field"}};

/// One accepted payload key: the catalog name, identifier form or an alias of a signal, or an envelope field.
/// `slot` is what a duplicate is detected by: the envelope field (0..4) or kEnvelope + the signal's index, so
/// "speed" and "Vehicle.Speed" in one payload are a duplicate. Built once per decoder from its catalog.
struct Field {
  std::string name;
  Kind kind;
  std::size_t slot;
  double min, max;
};

// car, ts, seq, lat, lon; then the catalog's signals.
inline constexpr std::size_t kEnvelope = 5;

Kind kind_of(SignalType t) {
  switch (t) {
    case SignalType::kInt:
      return Kind::kInt;
    case SignalType::kBool:
      return Kind::kBool;
    case SignalType::kDouble:
      break;
  }
  return Kind::kDouble;
}

// The keys a payload may use, in the order producers are expected to write them (encode_json's order), so
// the lookup hint below almost always hits on the first comparison.
std::vector<Field> fields_of(const catalog::Catalog& c) {
  std::vector<Field> f{
      {"car", Kind::kCar, 0, 0, 0},
      {"ts", Kind::kTs, 1, 1, 9.2e18},
      {"seq", Kind::kSeq, 2, 1, 9.2e18},
      {"lat", Kind::kLat, 3, core::kLatMin, core::kLatMax},
      {"lon", Kind::kLon, 4, core::kLonMin, core::kLonMax},
  };
  for (std::size_t i = 0; i < c.size(); ++i) {
    const auto& s = c[i];
    const auto add = [&](const std::string& name) {
      f.push_back({name, kind_of(s.type), kEnvelope + i, s.min, s.max});
    };
    add(s.name);
    if (s.field != s.name) add(s.field);
    for (const auto& a : s.aliases) add(a);
  }
  return f;
}

inline uint64_t load8(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Key equality in 8-byte words: every key is compared at least once per message, and a memcmp call per
// key (or a byte loop) cost 6-18% of decoding. Reads stay inside both strings.
inline bool same(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  if (n < 8) {
    for (std::size_t i = 0; i < n; ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }
  for (std::size_t off = 0; off + 8 < n; off += 8) {
    if (load8(a.data() + off) != load8(b.data() + off)) return false;
  }
  return load8(a.data() + n - 8) == load8(b.data() + n - 8);
}

/// Finds a payload key among a catalog's fields. Producers write their keys in the same order in every
/// message, so the lookup remembers which field followed which and tries that first: one comparison per key
/// in the steady state, whatever names (catalog names, aliases) and order a fleet uses. A miss falls back
/// to a hash lookup. Owned by one decoder.
class FieldIndex {
 public:
  explicit FieldIndex(const catalog::Catalog& c) : _fields(fields_of(c)), _next(_fields.size() + 1, 0) {
    _by_name.reserve(_fields.size());
    for (std::size_t i = 0; i < _fields.size(); ++i) _by_name.emplace(_fields[i].name, static_cast<int>(i));
  }
  const Field& operator[](std::size_t i) const { return _fields[i]; }
  std::size_t slots(const catalog::Catalog& c) const { return kEnvelope + c.size(); }

  /// Index of the field named `key`, or -1. `prev` is the previous key's result (-1 at the start).
  int find(std::string_view key, int prev) {
    const std::size_t from = static_cast<std::size_t>(prev) + 1;  // prev >= -1
    const int guess = _next[from];
    if (same(_fields[static_cast<std::size_t>(guess)].name, key)) return guess;
    const auto it = _by_name.find(key);
    if (it == _by_name.end()) return -1;
    _next[from] = it->second;
    return it->second;
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<Field> _fields;
  std::vector<int> _next;  ///< [previous field + 1] -> the field that followed it last time
  std::unordered_map<std::string, int, Hash, std::equal_to<>> _by_name;
};

// Quoted, escaped and shortened: keys and values in messages come from untrusted payloads and end up in
// DLQ headers and logs.
void append_quoted(std::string& out, std::string_view s) {
  constexpr std::size_t kMax = 64;
  if (s.size() <= kMax) {
    append_json_string(out, s);
  } else {
    append_json_string(out, s.substr(0, kMax));
    out += "...";
  }
}

void append_number_text(std::string& out, std::string_view token) {
  constexpr std::size_t kMax = 40;
  out.append(token.substr(0, kMax));
  if (token.size() > kMax) out += "...";
}

void describe(std::string& out, const simdjson::dom::element& v) {
  using T = simdjson::dom::element_type;
  switch (v.type()) {
    case T::INT64:
      append_json_int(out, v.get_int64().value_unsafe());
      return;
    case T::UINT64:
      out += std::to_string(v.get_uint64().value_unsafe());
      return;
    case T::DOUBLE:
      append_json_double(out, v.get_double().value_unsafe());
      return;
    case T::STRING:
      out += "the string ";
      append_quoted(out, v.get_string().value_unsafe());
      return;
    case T::BOOL:
      out += v.get_bool().value_unsafe() ? "true" : "false";
      return;
    case T::NULL_VALUE:
      out += "null";
      return;
    case T::ARRAY:
      out += "an array";
      return;
    case T::OBJECT:
      out += "an object";
      return;
  }
}

bool fail(DecodeError& error, RejectReason reason, std::string_view text) {
  error.reason = reason;
  error.detail.assign(text);
  return false;
}

// Starts "field "name": " and returns the detail string to continue.
std::string& field_error(DecodeError& error, RejectReason reason, std::string_view name) {
  error.reason = reason;
  error.detail.assign("field ");
  append_quoted(error.detail, name);
  error.detail += ": ";
  return error.detail;
}

bool fail_range(DecodeError& error, const Field& f, std::string_view value_text) {
  std::string& d = field_error(error, RejectReason::kOutOfRange, f.name);
  d += value_text;
  if (f.kind == Kind::kTs || f.kind == Kind::kSeq) {
    d += f.kind == Kind::kTs ? " is not a positive timestamp" : " is below 1";
  } else {
    // Bounds are whole numbers in the catalog; print them as such ("100000", not "1e+05").
    const auto bound = [&](double b) {
      if (b == std::trunc(b) && std::fabs(b) < 1e15) {
        append_json_int(d, static_cast<int64_t>(b));
      } else {
        append_json_double(d, b);
      }
    };
    d += " is outside [";
    bound(f.min);
    d += ", ";
    bound(f.max);
    d += ']';
  }
  return false;
}

bool is_json_number(std::string_view t) {
  std::size_t i = 0;
  const auto digit = [&](std::size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
  if (i < t.size() && t[i] == '-') ++i;
  if (!digit(i)) return false;
  if (t[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == t.size();
}

// Why simdjson refused this number token, or false if the token is fine (the error is elsewhere).
bool classify_bad_number(std::string_view name, std::string_view token, DecodeError& error) {
  if (!is_json_number(token)) {
    append_number_text(field_error(error, RejectReason::kMalformed, name) += "invalid number ", token);
    return true;
  }
  const std::string copy(token);  // strtod needs a terminated string; error path only
  const double d = std::strtod(copy.c_str(), nullptr);
  if (std::isinf(d)) {
    append_number_text(field_error(error, RejectReason::kNonFinite, name) += "number ", token);
    error.detail += " overflows a double";
    return true;
  }
  if (token.find_first_of(".eE") == std::string_view::npos) {
    const char* first = token.data();
    const char* last = token.data() + token.size();
    int64_t i;
    uint64_t u;
    const bool fits = std::from_chars(first, last, i).ec == std::errc{} ||
                      (token[0] != '-' && std::from_chars(first, last, u).ec == std::errc{});
    if (!fits) {
      append_number_text(field_error(error, RejectReason::kOutOfRange, name) += "integer ", token);
      error.detail += " does not fit in 64 bits";
      return true;
    }
  }
  return false;
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::string_view to_string(RejectReason r) { return core::name_of(kRejectReasonNames, r, "malformed"); }

/// The decoder's simdjson state and catalog index, kept out of json.h. Used by the decoder's thread.
struct TelemetryDecoder::Impl {
  // Typical payloads are under 1 KB; a large configured limit should not cost its size up front (simdjson
  // needs ~16 bytes per input byte). Bigger payloads grow the buffers once, on first sight.
  static constexpr std::size_t kInitialBytes = std::size_t{64} * 1024;

  Impl(std::size_t max_bytes, std::shared_ptr<const catalog::Catalog> c, UnknownFields unknown)
      : catalog(std::move(c)), fields(*catalog), unknown_policy(unknown), parser(max_bytes) {
    seen.assign(fields.slots(*catalog), 0);
    const std::size_t initial = std::min(max_bytes, kInitialBytes);
    if (parser.allocate(initial) != simdjson::SUCCESS) throw std::bad_alloc();
    reserve_scratch(initial);
  }

  void reserve_scratch(std::size_t size) {
    if (size + kJsonPadding <= scratch_capacity) return;
    scratch_capacity = size + kJsonPadding;
    scratch = std::make_unique<char[]>(scratch_capacity);
  }

  bool decode(const char* data, std::size_t size, core::Telemetry& out, DecodeError& error);
  bool explain_parse_error(simdjson::error_code code, const char* data, std::size_t size, DecodeError& error);
  bool decode_field(const Field& f, simdjson::dom::element v, core::Telemetry& out, DecodeError& error);
  static constexpr int kFailed = -1;   // claim(): error set
  static constexpr int kDropped = -2;  // claim(): an unknown key, dropped by the policy
  // Looks payload key `key` up and marks its signal seen in this message: its field index, kDropped for an
  // unknown key under the drop policy (kept in `unknown`, up to kMaxUnknownFields per message), or kFailed
  // with the error set (an unknown key under reject, a duplicate). Both decoding paths call it in member
  // order, so they report the same first problem.
  int claim(std::string_view key, int prev, DecodeError& error) {
    const int index = fields.find(key, prev);
    if (index < 0) {
      if (unknown_policy == UnknownFields::kReject) {
        error.reason = RejectReason::kUnknownField;
        error.detail = "unknown field ";
        append_quoted(error.detail, key);
        return kFailed;
      }
      if (unknown.size() < kMaxUnknownFields) unknown.push_back(key);
      ++unknown_count;
      return kDropped;
    }
    const Field& f = fields[static_cast<std::size_t>(index)];
    if (seen[f.slot] == epoch) {
      error.reason = RejectReason::kDuplicateField;
      error.detail = "duplicate field ";
      append_quoted(error.detail, key);
      if (f.name != key) error.detail += " (another name of " + f.name + ")";
      return kFailed;
    }
    seen[f.slot] = epoch;
    return index;
  }
  void store_signal(const Field& f, double v, core::Telemetry& out) {
    const std::size_t i = f.slot - kEnvelope;
    out.values[i] = v;
    if (!(v >= f.min && v <= f.max)) out.out_of_range.push_back(static_cast<uint16_t>(i));
  }

  std::shared_ptr<const catalog::Catalog> catalog;
  FieldIndex fields;
  UnknownFields unknown_policy;
  // Per slot, the message (epoch) that last carried it: no clearing per message.
  std::vector<uint32_t> seen;
  uint32_t epoch = 0;
  std::vector<std::string_view> unknown;  // keys of the last message the catalog does not know
  std::size_t unknown_count = 0;
  simdjson::dom::parser parser;
  // simdjson's DOM parser reports a bad number without saying where; this one walks the fields to find
  // it. Created on the first such payload.
  std::unique_ptr<simdjson::ondemand::parser> locator;
  std::unique_ptr<char[]> scratch;  // the payload copy, with padding
  std::size_t scratch_capacity = 0;
};

bool TelemetryDecoder::Impl::decode(const char* data, std::size_t size, core::Telemetry& out,
                                    DecodeError& error) {
  unknown.clear();
  unknown_count = 0;
  simdjson::dom::element root;
  if (const auto code = parser.parse(data, size, false).get(root)) {
    return explain_parse_error(code, data, size, error);
  }
  simdjson::dom::object object;
  if (root.get_object().get(object)) {
    error.reason = RejectReason::kMalformed;
    error.detail = "payload is not a JSON object but ";
    describe(error.detail, root);
    return false;
  }
  if (++epoch == 0) {  // wrapped: forget every mark, so an old one cannot look current
    std::fill(seen.begin(), seen.end(), 0);
    epoch = 1;
  }
  out.lat = out.lon = core::kAbsent;
  out.values.assign(catalog->size(), core::kAbsent);
  out.out_of_range.clear();
  int prev = -1;
  // Iterator accessors rather than key_value_pair copies: the copies caused store-forwarding stalls that
  // cost more than the rest of the loop.
  for (auto it = object.begin(), end = object.end(); it != end; ++it) {
    const std::string_view key = it.key();
    const int index = claim(key, prev, error);
    if (index == kFailed) return false;
    if (index == kDropped) continue;
    prev = index;
    if (!decode_field(fields[static_cast<std::size_t>(index)], it.value(), out, error)) return false;
  }
  // car, ts and seq make a message; a position needs both coordinates; every signal is optional.
  for (std::size_t slot = 0; slot < kEnvelope; ++slot) {
    const bool position = slot == 3 || slot == 4;
    if (seen[slot] == epoch || (position && seen[3] != epoch && seen[4] != epoch)) continue;
    error.reason = RejectReason::kMissingField;
    error.detail = "missing field ";
    append_quoted(error.detail, fields[slot].name);
    if (position) error.detail += " (a position needs both lat and lon)";
    return false;
  }
  // Payloads in catalog order (the usual case) leave the flags sorted already.
  if (!std::is_sorted(out.out_of_range.begin(), out.out_of_range.end())) {
    std::sort(out.out_of_range.begin(), out.out_of_range.end());
  }
  return true;
}

bool TelemetryDecoder::Impl::decode_field(const Field& f, simdjson::dom::element v, core::Telemetry& out,
                                          DecodeError& error) {
  using T = simdjson::dom::element_type;
  switch (f.kind) {
    case Kind::kCar: {
      std::string_view s;
      if (v.get_string().get(s)) {
        describe(field_error(error, RejectReason::kWrongType, f.name) += "expected a string, got ", v);
        return false;
      }
      if (!core::valid_car_id(s)) {
        append_quoted(field_error(error, RejectReason::kBadCarId, f.name), s);
        error.detail += " is not a valid car id ([A-Za-z0-9_-]{1,64})";
        return false;
      }
      out.car.assign(s);
      return true;
    }
    case Kind::kBool: {
      // true/false, or 0/1 from producers without a boolean type.
      bool b;
      if (!v.get_bool().get(b)) {
        store_signal(f, b ? 1 : 0, out);
        return true;
      }
      int64_t i;
      if (!v.get_int64().get(i) && (i == 0 || i == 1)) {
        store_signal(f, static_cast<double>(i), out);
        return true;
      }
      describe(field_error(error, RejectReason::kWrongType, f.name) += "expected true or false, got ", v);
      return false;
    }
    case Kind::kLat:
    case Kind::kLon:
    case Kind::kDouble: {
      double d;
      if (v.get_double().get(d)) {  // ints convert; only non-numbers fail
        describe(field_error(error, RejectReason::kWrongType, f.name) += "expected a number, got ", v);
        return false;
      }
      if (!std::isfinite(d)) {
        describe(field_error(error, RejectReason::kNonFinite, f.name), v);
        return false;
      }
      if (f.kind == Kind::kDouble) {
        store_signal(f, d, out);
        return true;
      }
      // A position outside the globe is not a reading of a part: the message cannot be placed.
      if (!(d >= f.min && d <= f.max)) {
        char buf[kMaxJsonNumberChars];
        return fail_range(error, f, std::string_view(buf, write_json_double(buf, d) - buf));
      }
      (f.kind == Kind::kLat ? out.lat : out.lon) = d;
      return true;
    }
    case Kind::kTs:
    case Kind::kSeq:
    case Kind::kInt: {
      int64_t i;
      switch (v.type()) {
        case T::INT64:
          i = v.get_int64().value_unsafe();
          break;
        case T::UINT64: {
          if (f.kind == Kind::kInt) {  // a reading, however implausible: kept and flagged
            store_signal(f, static_cast<double>(v.get_uint64().value_unsafe()), out);
            return true;
          }
          const std::string text = std::to_string(v.get_uint64().value_unsafe());
          std::string& d = field_error(error, RejectReason::kOutOfRange, f.name);
          d += text;
          d += " does not fit in a signed 64-bit integer";
          return false;
        }
        case T::DOUBLE: {
          // Producers that only have doubles (Python's json of a float) write 31.0: accept whole values.
          const double d = v.get_double().value_unsafe();
          if (!std::isfinite(d)) {
            describe(field_error(error, RejectReason::kNonFinite, f.name), v);
            return false;
          }
          if (d != std::trunc(d)) {
            describe(field_error(error, RejectReason::kWrongType, f.name) += "expected an integer, got ", v);
            return false;
          }
          if (f.kind == Kind::kInt) {
            store_signal(f, d, out);
            return true;
          }
          if (!(d > -9.2e18 && d < 9.2e18)) {
            describe(field_error(error, RejectReason::kOutOfRange, f.name), v);
            error.detail += " does not fit in a signed 64-bit integer";
            return false;
          }
          i = static_cast<int64_t>(d);
          break;
        }
        default:
          describe(field_error(error, RejectReason::kWrongType, f.name) += "expected an integer, got ", v);
          return false;
      }
      if (f.kind == Kind::kTs || f.kind == Kind::kSeq) {
        if (i < 1) {
          char buf[kMaxJsonNumberChars];
          return fail_range(error, f, std::string_view(buf, write_json_int(buf, i) - buf));
        }
        (f.kind == Kind::kTs ? out.ts : out.seq) = i;
        return true;
      }
      store_signal(f, static_cast<double>(i), out);
      return true;
    }
  }
  return fail(error, RejectReason::kMalformed, "internal: unhandled field kind");
}

bool TelemetryDecoder::Impl::explain_parse_error(simdjson::error_code code, const char* data,
                                                 std::size_t size, DecodeError& error) {
  switch (code) {
    case simdjson::EMPTY:
      return fail(error, RejectReason::kMalformed, "empty payload");
    case simdjson::UTF8_ERROR:
      return fail(error, RejectReason::kMalformed, "payload is not valid UTF-8");
    case simdjson::NUMBER_ERROR:
      break;
    default:
      error.reason = RejectReason::kMalformed;
      error.detail = "not valid JSON: ";
      error.detail += simdjson::error_message(code);
      return false;
  }
  // Find the field holding the bad number, walking the members in order so that an unknown or duplicate
  // field before it is reported as such, exactly as the normal path would.
  if (!locator) locator = std::make_unique<simdjson::ondemand::parser>();
  const auto generic = [&] {
    return fail(error, RejectReason::kMalformed, "not valid JSON: a number could not be parsed");
  };
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (locator->iterate(data, size, size + kJsonPadding).get(doc) || doc.get_object().get(object)) {
    return generic();
  }
  if (++epoch == 0) {
    std::fill(seen.begin(), seen.end(), 0);
    epoch = 1;
  }
  int prev = -1;
  for (auto member : object) {
    std::string_view key;
    simdjson::ondemand::value value;
    if (member.unescaped_key().get(key) || member.value().get(value)) return generic();
    const int index = claim(key, prev, error);
    if (index == kFailed) return false;
    if (index == kDropped) continue;
    prev = index;
    const Field& f = fields[static_cast<std::size_t>(index)];
    const std::string_view token = trim_right(value.raw_json_token());
    if (!token.empty() && (token[0] == '-' || (token[0] >= '0' && token[0] <= '9'))) {
      if (classify_bad_number(f.name, token, error)) return false;
    }
  }
  return generic();
}

TelemetryDecoder::TelemetryDecoder(std::size_t max_bytes, std::shared_ptr<const catalog::Catalog> catalog,
                                   UnknownFields unknown)
    : _max_bytes(max_bytes), _impl(std::make_unique<Impl>(max_bytes, std::move(catalog), unknown)) {}
const catalog::Catalog& TelemetryDecoder::catalog() const { return *_impl->catalog; }
const std::vector<std::string_view>& TelemetryDecoder::unknown_fields() const { return _impl->unknown; }
std::size_t TelemetryDecoder::unknown_field_count() const { return _impl->unknown_count; }
TelemetryDecoder::~TelemetryDecoder() = default;
TelemetryDecoder::TelemetryDecoder(TelemetryDecoder&&) noexcept = default;
TelemetryDecoder& TelemetryDecoder::operator=(TelemetryDecoder&&) noexcept = default;

namespace {

bool oversized(std::size_t size, std::size_t max_bytes, DecodeError& error) {
  if (size <= max_bytes) return false;
  error.reason = RejectReason::kOversized;
  error.detail = "payload of " + std::to_string(size) + " bytes exceeds the limit of " +
                 std::to_string(max_bytes) + " bytes";
  return true;
}

}  // namespace

bool TelemetryDecoder::decode(std::string_view json, core::Telemetry& out, DecodeError& error) {
  if (oversized(json.size(), _max_bytes, error)) return false;
  _impl->reserve_scratch(json.size());
  std::memcpy(_impl->scratch.get(), json.data(), json.size());
  return _impl->decode(_impl->scratch.get(), json.size(), out, error);
}

bool TelemetryDecoder::decode(const std::string& json, core::Telemetry& out, DecodeError& error) {
  // std::string owns capacity() + 1 bytes (the terminator), all readable.
  if (json.capacity() - json.size() >= kJsonPadding) {
    return decode_padded(json, json.capacity(), out, error);
  }
  return decode(std::string_view(json), out, error);
}

bool TelemetryDecoder::decode_padded(std::string_view json, std::size_t capacity, core::Telemetry& out,
                                     DecodeError& error) {
  if (oversized(json.size(), _max_bytes, error)) return false;
  if (capacity < json.size() + kJsonPadding) return decode(json, out, error);
  return _impl->decode(json.data(), json.size(), out, error);
}

// ---- encoder -------------------------------------------------------------------------------------------

namespace {

// Int signals are whole numbers stored in a double; print them without a fraction. Anything else (a
// producer bug) still prints, as a double, rather than being silently changed.
char* write_int_signal(char* p, double v) {
  if (v > -9.2e18 && v < 9.2e18 && v == std::trunc(v)) return write_json_int(p, static_cast<int64_t>(v));
  return write_json_double(p, v);
}

char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

}  // namespace

TelemetryEncoder::TelemetryEncoder(std::shared_ptr<const catalog::Catalog> catalog,
                                   std::vector<std::string> names)
    : _catalog(std::move(catalog)) {
  if (!names.empty() && names.size() != _catalog->size()) {
    throw std::invalid_argument("TelemetryEncoder: one name per catalog signal");
  }
  for (std::size_t i = 0; i < _catalog->size(); ++i) {
    std::string key = ",";
    append_json_string(key, names.empty() ? (*_catalog)[i].name : names[i]);
    _keys.push_back(key + ":");
    _types.push_back((*_catalog)[i].type);
  }
}

void TelemetryEncoder::encode(const core::Telemetry& t, std::string& out) const {
  out.append("{\"car\":");
  append_json_string(out, t.car);
  const std::size_t start = out.size();
  // Room for every key and number; trimmed after, so nothing is checked per byte.
  std::size_t room = 3 * (8 + kMaxJsonNumberChars);
  for (const auto& k : _keys) room += k.size() + kMaxJsonNumberChars;
  out.resize(start + room);
  char* const begin = out.data() + start;
  char* p = begin;
  p = write_json_int(put(p, ",\"ts\":"), t.ts);
  p = write_json_int(put(p, ",\"seq\":"), t.seq);
  if (t.has_position()) {
    p = write_json_double(put(p, ",\"lat\":"), t.lat);
    p = write_json_double(put(p, ",\"lon\":"), t.lon);
  }
  const std::size_t n = std::min(t.values.size(), _keys.size());
  for (std::size_t i = 0; i < n; ++i) {
    const double v = t.values[i];
    if (core::absent(v)) continue;
    p = put(p, _keys[i]);
    switch (_types[i]) {
      case core::SignalType::kInt:
        p = write_int_signal(p, v);
        break;
      case core::SignalType::kBool:
        p = put(p, v != 0 ? "true" : "false");
        break;
      case core::SignalType::kDouble:
        p = write_json_double(p, v);
        break;
    }
  }
  *p++ = '}';
  out.resize(start + static_cast<std::size_t>(p - begin));
}

void encode_json(const core::Telemetry& t, std::string& out) {
  static const TelemetryEncoder kEncoder;
  kEncoder.encode(t, out);
}

}  // namespace fleettwin::codec
