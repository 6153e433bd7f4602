// Telemetry JSON: the decoder on the process stage's hot path and the encoder the simulator publishes with.

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "codec/json.h"
#include "codec/json_writer.h"
#include "core/enum_names.h"

namespace fleettwin::codec {

static_assert(kJsonPadding >= simdjson::SIMDJSON_PADDING);

namespace {

using core::kSignalCount;
using core::kSignals;
using core::SignalType;

enum class Kind : uint8_t { kCar, kTs, kSeq, kLat, kLon, kDouble, kInt };

// The DLQ's `error.reason` header and a metrics label: stable strings.
constexpr core::EnumName<RejectReason> kRejectReasonNames[] = {
    {RejectReason::kMalformed, "malformed"},           {RejectReason::kMissingField, "missing_field"},
    {RejectReason::kWrongType, "wrong_type"},          {RejectReason::kNonFinite, "non_finite"},
    {RejectReason::kOutOfRange, "out_of_range"},       {RejectReason::kOversized, "oversized"},
    {RejectReason::kBadCarId, "bad_car_id"},           {RejectReason::kUnknownField, "unknown_field"},
    {RejectReason::kDuplicateField, "duplicate_field"}};

/// One accepted wire field: its name, how it is checked and stored, and its plausible range. Constant data.
struct Field {
  std::string_view name;
  Kind kind;
  double min, max;
};

// car, ts, seq, lat, lon, then the signals: field index kFirstSignal + i is core::Signal i.
inline constexpr std::size_t kFirstSignal = 5;
inline constexpr std::size_t kFieldCount = kFirstSignal + kSignalCount;

// The wire fields in the order producers are expected to write them (encode_json's order), so the
// lookup hint below almost always hits on the first comparison.
constexpr std::array<Field, kFieldCount> kFields = [] {
  std::array<Field, kFieldCount> f{{
      {"car", Kind::kCar, 0, 0},
      {"ts", Kind::kTs, 1, 9.2e18},
      {"seq", Kind::kSeq, 1, 9.2e18},
      {"lat", Kind::kLat, core::kLatMin, core::kLatMax},
      {"lon", Kind::kLon, core::kLonMin, core::kLonMax},
  }};
  for (std::size_t i = 0; i < kSignalCount; ++i) {
    const auto& s = kSignals[i];
    f[kFirstSignal + i] = {s.name, s.type == SignalType::kInt ? Kind::kInt : Kind::kDouble, s.min, s.max};
  }
  return f;
}();

inline constexpr uint32_t kAllFields = (uint32_t{1} << kFieldCount) - 1;
static_assert(kFieldCount <= 32);

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

inline int find_field(std::string_view key, std::size_t hint) {
  if (hint < kFieldCount && same(kFields[hint].name, key)) return static_cast<int>(hint);
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    if (same(kFields[i].name, key)) return static_cast<int>(i);
  }
  return -1;
}

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

// Marks member `key` as seen and returns its field index; -1, with the error set, when `key` is not a field
// or was seen before. Both decoding paths call it in member order, so they report the same first problem.
inline int claim_field(std::string_view key, std::size_t hint, uint32_t& seen, DecodeError& error) {
  const int index = find_field(key, hint);
  if (index < 0) {
    error.reason = RejectReason::kUnknownField;
    error.detail = "unknown field ";
    append_quoted(error.detail, key);
    return -1;
  }
  const uint32_t bit = uint32_t{1} << index;
  if (seen & bit) {
    error.reason = RejectReason::kDuplicateField;
    error.detail = "duplicate field ";
    append_quoted(error.detail, key);
    return -1;
  }
  seen |= bit;
  return index;
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
    d += "]";
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

/// The decoder's simdjson state, kept out of json.h. Used by the decoder's thread.
struct TelemetryDecoder::Impl {
  // Typical payloads are under 1 KB; a large configured limit should not cost its size up front (simdjson
  // needs ~16 bytes per input byte). Bigger payloads grow the buffers once, on first sight.
  static constexpr std::size_t kInitialBytes = std::size_t{64} * 1024;

  explicit Impl(std::size_t max_bytes) : parser(max_bytes) {
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
  bool decode_field(const Field& f, std::size_t index, simdjson::dom::element v, core::Telemetry& out,
                    DecodeError& error);

  simdjson::dom::parser parser;
  // simdjson's DOM parser reports a bad number without saying where; this one walks the fields to find
  // it. Created on the first such payload.
  std::unique_ptr<simdjson::ondemand::parser> locator;
  std::unique_ptr<char[]> scratch;  // the payload copy, with padding
  std::size_t scratch_capacity = 0;
};

bool TelemetryDecoder::Impl::decode(const char* data, std::size_t size, core::Telemetry& out,
                                    DecodeError& error) {
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
  uint32_t seen = 0;
  std::size_t hint = 0;
  // Iterator accessors rather than key_value_pair copies: the copies caused store-forwarding stalls that
  // cost more than the rest of the loop.
  for (auto it = object.begin(), end = object.end(); it != end; ++it) {
    const std::string_view key = it.key();
    const int index = claim_field(key, hint, seen, error);
    if (index < 0) return false;
    hint = static_cast<std::size_t>(index) + 1;
    if (!decode_field(kFields[index], static_cast<std::size_t>(index), it.value(), out, error)) return false;
  }
  if (seen != kAllFields) {
    for (std::size_t i = 0; i < kFieldCount; ++i) {
      if (!(seen & (uint32_t{1} << i))) {
        error.reason = RejectReason::kMissingField;
        error.detail = "missing field ";
        append_quoted(error.detail, kFields[i].name);
        return false;
      }
    }
  }
  return true;
}

bool TelemetryDecoder::Impl::decode_field(const Field& f, std::size_t index, simdjson::dom::element v,
                                          core::Telemetry& out, DecodeError& error) {
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
      if (!(d >= f.min && d <= f.max)) {
        char buf[kMaxJsonNumberChars];
        return fail_range(error, f, std::string_view(buf, write_json_double(buf, d) - buf));
      }
      if (f.kind == Kind::kLat) {
        out.lat = d;
      } else if (f.kind == Kind::kLon) {
        out.lon = d;
      } else {
        out.values[index - kFirstSignal] = d;
      }
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
      const auto d = static_cast<double>(i);
      if (!(d >= f.min && d <= f.max)) {
        char buf[kMaxJsonNumberChars];
        return fail_range(error, f, std::string_view(buf, write_json_int(buf, i) - buf));
      }
      out.values[index - kFirstSignal] = d;
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
  uint32_t seen = 0;
  for (auto member : object) {
    std::string_view key;
    simdjson::ondemand::value value;
    if (member.unescaped_key().get(key) || member.value().get(value)) return generic();
    const int index = claim_field(key, 0, seen, error);
    if (index < 0) return false;
    const std::string_view token = trim_right(value.raw_json_token());
    if (!token.empty() && (token[0] == '-' || (token[0] >= '0' && token[0] <= '9'))) {
      if (classify_bad_number(kFields[index].name, token, error)) return false;
    }
  }
  return generic();
}

TelemetryDecoder::TelemetryDecoder(std::size_t max_bytes)
    : _max_bytes(max_bytes), _impl(std::make_unique<Impl>(max_bytes)) {}
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

// `{"car":`, `,"ts":`, ... : every key with its punctuation, built once from the catalog. Each sits in a
// 32-byte slot that is always copied whole (a fixed-size copy compiles to two vector moves; a memcpy call per
// key cost 10% of encoding); the writer then advances by the real length.
constexpr std::size_t kSlot = 32;

/// The key prefixes above; built once, then read by any thread.
struct KeyPrefixes {
  std::array<std::array<char, kSlot>, kFieldCount> text{};
  std::array<std::size_t, kFieldCount> size{};
  KeyPrefixes() {
    for (std::size_t i = 0; i < kFieldCount; ++i) {
      const std::string t = (i == 0 ? "{\"" : ",\"") + std::string(kFields[i].name) + "\":";
      std::memcpy(text[i].data(), t.data(), t.size());
      size[i] = t.size();
    }
  }
};

static_assert([] {
  for (const auto& f : kFields) {
    if (f.name.size() + 4 > kSlot) return false;
  }
  return true;
}());

constexpr std::size_t kKeyBytes = [] {
  std::size_t n = 0;
  for (const auto& f : kFields) n += f.name.size() + 4;
  return n;
}();

inline char* put_key(char* p, const KeyPrefixes& keys, std::size_t i) {
  std::memcpy(p, keys.text[i].data(), kSlot);
  return p + keys.size[i];
}

// Int signals are whole numbers stored in a double; print them without a fraction. Anything else (a
// producer bug) still prints, as a double, rather than being silently changed.
char* write_int_signal(char* p, double v) {
  if (v > -9.2e18 && v < 9.2e18 && v == std::trunc(v)) return write_json_int(p, static_cast<int64_t>(v));
  return write_json_double(p, v);
}

}  // namespace

void encode_json(const core::Telemetry& t, std::string& out) {
  static const KeyPrefixes kKeys;
  out.append(kKeys.text[0].data(), kKeys.size[0]);
  append_json_string(out, t.car);
  // + kSlot: the last key copy may write a whole slot past its own end.
  char buf[kKeyBytes + kFieldCount * kMaxJsonNumberChars + kSlot + 1];
  char* p = buf;
  p = write_json_int(put_key(p, kKeys, 1), t.ts);
  p = write_json_int(put_key(p, kKeys, 2), t.seq);
  p = write_json_double(put_key(p, kKeys, 3), t.lat);
  p = write_json_double(put_key(p, kKeys, 4), t.lon);
  for (std::size_t i = 0; i < kSignalCount; ++i) {
    p = put_key(p, kKeys, kFirstSignal + i);
    p = kSignals[i].type == SignalType::kInt ? write_int_signal(p, t.values[i])
                                             : write_json_double(p, t.values[i]);
  }
  *p++ = '}';
  out.append(buf, static_cast<std::size_t>(p - buf));  // (ptr, len): the iterator overload is far slower
}

}  // namespace fleettwin::codec
