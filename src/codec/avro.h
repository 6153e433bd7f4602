#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "core/telemetry.h"

namespace fleettwin::codec {

// ---- Confluent wire format -----------------------------------------------------------------------------

/// Magic byte 0, then the 4-byte big-endian schema registry id, then the Avro binary body.
inline constexpr std::size_t kConfluentHeaderSize = 5;

void append_confluent_header(std::string& out, int32_t schema_id);

/// Splits a framed value into schema id and body; false when it is shorter than the header or the magic
/// byte is not 0.
bool read_confluent_header(std::string_view in, int32_t& schema_id, std::string_view& body);

// ---- Avro binary primitives ----------------------------------------------------------------------------

/// Longest Avro encoding of a long (zigzag varint of 64 bits: 10 bytes of 7 bits).
inline constexpr std::size_t kMaxVarintBytes = 10;

/// Writes Avro binary values (spec 1.11 "Binary Encoding") at a raw pointer. The caller guarantees the
/// room (kMaxVarintBytes per long/int, 8 per double, length + bytes per string): encoders size their
/// output once instead of checking on every byte. Used by one thread at a time.
class AvroWriter {
 public:
  explicit AvroWriter(char* p) : _p(p) {}

  void write_long(int64_t v) {
    uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);  // zigzag
    while (z >= 0x80) {
      *_p++ = static_cast<char>((z & 0x7F) | 0x80);
      z >>= 7;
    }
    *_p++ = static_cast<char>(z);
  }
  void write_int(int32_t v) { write_long(v); }  // an int's zigzag varint equals the long's
  void write_boolean(bool v) { *_p++ = v ? 1 : 0; }
  void write_double(double v) {
    uint64_t bits = std::bit_cast<uint64_t>(v);
    if constexpr (std::endian::native == std::endian::big) bits = __builtin_bswap64(bits);
    std::memcpy(_p, &bits, 8);  // Avro doubles are little-endian IEEE 754
    _p += 8;
  }
  void write_string(std::string_view s) {
    write_long(static_cast<int64_t>(s.size()));
    std::memcpy(_p, s.data(), s.size());
    _p += s.size();
  }
  char* position() const { return _p; }

 private:
  char* _p;
};

/// Appends one Confluent-framed Avro value to `out`: the header, then what `write_body(AvroWriter&)` writes,
/// which must fit in `bound` bytes, the header included. Sizes once, writes through a pointer, trims: no
/// capacity check per byte.
template <typename WriteBody>
void append_framed(std::string& out, int32_t schema_id, std::size_t bound, WriteBody&& write_body) {
  const std::size_t start = out.size();
  append_confluent_header(out, schema_id);
  out.resize(start + bound);
  AvroWriter w(out.data() + start + kConfluentHeaderSize);
  write_body(w);
  out.resize(static_cast<std::size_t>(w.position() - out.data()));
}

/// Reads Avro binary values with a bounds check on every read: truncated or garbage input yields false
/// (and an error text naming the offset), never a read past the end. Used by one thread at a time.
class AvroReader {
 public:
  explicit AvroReader(std::string_view in) : _in(in) {}

  bool read_long(int64_t& v) {
    uint64_t z = 0;
    for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
      if (_pos >= _in.size()) return fail("truncated varint");
      const auto b = static_cast<uint8_t>(_in[_pos++]);
      if (i == kMaxVarintBytes - 1 && b > 1) return fail("varint overflows 64 bits");
      z |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
      if (!(b & 0x80)) {
        v = static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
        return true;
      }
    }
    return fail("varint longer than 10 bytes");
  }
  bool read_int(int32_t& v) {
    int64_t l;
    if (!read_long(l)) return false;
    if (l < INT32_MIN || l > INT32_MAX) return fail("int out of 32-bit range");
    v = static_cast<int32_t>(l);
    return true;
  }
  bool read_boolean(bool& v) {
    if (_pos >= _in.size()) return fail("truncated boolean");
    const auto b = static_cast<uint8_t>(_in[_pos++]);
    if (b > 1) return fail("boolean byte is neither 0 nor 1");
    v = b == 1;
    return true;
  }
  bool read_double(double& v) { return read_ieee<uint64_t>(v, "truncated double"); }
  bool read_float(float& v) { return read_ieee<uint32_t>(v, "truncated float"); }
  /// `n` raw bytes (an Avro fixed); the view points into the input.
  bool read_fixed(std::size_t n, std::string_view& s) {
    if (n > _in.size() - _pos) return fail("truncated fixed");
    s = _in.substr(_pos, n);
    _pos += n;
    return true;
  }
  /// The view points into the input.
  bool read_string(std::string_view& s) {
    int64_t n;
    if (!read_long(n)) return false;
    if (n < 0) return fail("negative string length");
    if (static_cast<uint64_t>(n) > _in.size() - _pos) return fail("string longer than the remaining input");
    s = _in.substr(_pos, static_cast<std::size_t>(n));
    _pos += static_cast<std::size_t>(n);
    return true;
  }

  /// Reads the items of an Avro array or map (spec 1.11 "Arrays", "Maps": blocks of a count of items, a
  /// negative count followed by the block's byte size, ended by a zero count), calling `item(key)` for each
  /// (`key`: the map key, empty for an array), which reads the item and returns false to stop. More than
  /// `max_items` in all is an error: an item of type null takes no bytes, so the input alone bounds nothing.
  template <typename Item>
  bool read_blocks(bool map, int64_t max_items, Item&& item) {
    int64_t total = 0;
    for (;;) {
      int64_t count;
      if (!read_long(count)) return false;
      if (count == 0) return true;
      if (count < 0) {
        if (count == INT64_MIN) return fail("bad block count");
        count = -count;
        int64_t bytes;  // the items are read one by one anyway
        if (!read_long(bytes)) return false;
      }
      total += count;
      if (total > max_items) return fail("more items than allowed");
      for (int64_t i = 0; i < count; ++i) {
        std::string_view key;
        if (map && !read_string(key)) return false;
        if (!item(key)) return false;
      }
    }
  }

  bool at_end() const { return _pos == _in.size(); }
  std::size_t position() const { return _pos; }
  std::size_t remaining() const { return _in.size() - _pos; }
  /// What the first failed read found, or null. Static text.
  const char* error() const { return _error; }

 private:
  bool fail(const char* what) {
    _error = what;
    return false;
  }
  /// An IEEE 754 float or double `v` of the width of `Bits`, little-endian as Avro writes it.
  template <typename Bits, typename F>
  bool read_ieee(F& v, const char* truncated) {
    static_assert(sizeof(Bits) == sizeof(F));
    if (_in.size() - _pos < sizeof(Bits)) return fail(truncated);
    Bits bits;
    std::memcpy(&bits, _in.data() + _pos, sizeof(Bits));
    if constexpr (std::endian::native == std::endian::big) {
      if constexpr (sizeof(Bits) == 8) {
        bits = __builtin_bswap64(bits);
      } else {
        bits = __builtin_bswap32(bits);
      }
    }
    v = std::bit_cast<F>(bits);
    _pos += sizeof(Bits);
    return true;
  }

  std::string_view _in;
  std::size_t _pos = 0;
  const char* _error = nullptr;
};

// ---- CarTelemetry (fleet.telemetry) --------------------------------------------------------------------

/// The Avro type of a catalog signal's values: "long" (int), "boolean" (bool) or "double".
std::string_view avro_type(core::SignalType t);

/// CarTelemetry in Avro for one signal catalog: the schema generated from it, and the encoder and decoder of
/// records written with that schema. The record is io.fleettwin.CarTelemetry: car, ts (timestamp-millis),
/// seq, lat and lon (null when the car sent no position), one field per catalog signal in catalog order under
/// its identifier form (SignalSpec::field; union of null and double, long or boolean, default null: a car may
/// send any subset, and a record written under an older catalog lacks the newer signals), with the signal's
/// other names as Avro aliases, then `flags`, the fields whose reading lies outside its plausible range. So a
/// catalog change that `catalog check` calls compatible is a BACKWARD-compatible schema change. Immutable;
/// any thread.
class TelemetryAvro {
 public:
  explicit TelemetryAvro(std::shared_ptr<const catalog::Catalog> catalog = catalog::builtin());
  const catalog::Catalog& catalog() const { return *_catalog; }
  /// The schema as JSON text: what is registered with the schema registry.
  const std::string& schema() const { return _schema; }
  /// Appends `t` in the Confluent wire format. Int signals are whole numbers (the JSON decoder guarantees
  /// it); one beyond the int64 range (a flagged, implausible reading) is saturated.
  void encode(const core::Telemetry& t, int32_t schema_id, std::string& out) const;
  /// Decodes a Confluent-framed record written with schema(). Truncated input, bad magic byte, malformed
  /// varints, a bad union branch, negative or oversized lengths, an unknown flag and trailing bytes are
  /// errors. Either pointer may be null. `t` is partly written on failure.
  bool decode(std::string_view in, core::Telemetry& t, int32_t* schema_id, std::string* error) const;

 private:
  std::shared_ptr<const catalog::Catalog> _catalog;
  std::string _schema;
  std::vector<core::SignalType> _types;
  std::size_t _bound = 0;  ///< largest encoding without the car id and the flags
};

/// The built-in catalog's TelemetryAvro.
const TelemetryAvro& builtin_telemetry_avro();
/// builtin_telemetry_avro().schema().
const std::string& car_telemetry_schema();
/// builtin_telemetry_avro().encode(...).
void encode_avro_telemetry(const core::Telemetry& t, int32_t schema_id, std::string& out);
/// builtin_telemetry_avro().decode(...).
bool decode_avro_telemetry(std::string_view in, core::Telemetry& t, int32_t* schema_id, std::string* error);

}  // namespace fleettwin::codec
