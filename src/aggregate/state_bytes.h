#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace fleettwin::aggregate {

/// Appends the engine's saved state (Engine::save_car) as varints and little-endian doubles: compact, and
/// the same bytes on every platform. Plain value, one thread.
class StateWriter {
 public:
  explicit StateWriter(std::string& out) : _out(out) {}
  void u64(uint64_t v) {
    while (v >= 0x80) {
      _out.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    _out.push_back(static_cast<char>(v));
  }
  void i64(int64_t v) { u64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void f64(double v) {
    uint64_t bits = std::bit_cast<uint64_t>(v);
    if constexpr (std::endian::native == std::endian::big) bits = __builtin_bswap64(bits);
    char b[8];
    std::memcpy(b, &bits, 8);
    _out.append(b, 8);
  }
  /// A length-prefixed string.
  void bytes(std::string_view s) {
    u64(s.size());
    _out.append(s);
  }

 private:
  std::string& _out;
};

/// Reads what StateWriter wrote with a bounds check on every read: saved state comes back from a log topic,
/// which anyone with access to the log can write, so truncated or garbage bytes give false, never a read
/// past the end. The first failure's text stays in error(). Plain value, one thread.
class StateReader {
 public:
  explicit StateReader(std::string_view in) : _in(in) {}
  bool u64(uint64_t& v) {
    v = 0;
    for (int i = 0; i < 10; ++i) {
      if (_pos >= _in.size()) return fail("truncated varint");
      const auto b = static_cast<uint8_t>(_in[_pos++]);
      if (i == 9 && b > 1) return fail("varint overflows 64 bits");
      v |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
      if (!(b & 0x80)) return true;
    }
    return fail("varint longer than 10 bytes");
  }
  bool i64(int64_t& v) {
    uint64_t z;
    if (!u64(z)) return false;
    v = static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
    return true;
  }
  /// An unsigned count of at most `max`.
  bool count(uint64_t& v, uint64_t max, const char* what) {
    if (!u64(v)) return false;
    return v <= max || fail(what);
  }
  bool f64(double& v) {
    if (_in.size() - _pos < 8) return fail("truncated double");
    uint64_t bits;
    std::memcpy(&bits, _in.data() + _pos, 8);
    if constexpr (std::endian::native == std::endian::big) bits = __builtin_bswap64(bits);
    v = std::bit_cast<double>(bits);
    _pos += 8;
    return true;
  }
  /// A length-prefixed string of at most `max` bytes.
  bool bytes(std::string& s, std::size_t max, const char* what) {
    uint64_t n = 0;
    if (!count(n, max, what)) return false;
    if (n > remaining()) return fail("truncated string");
    s.assign(_in.substr(_pos, n));
    _pos += n;
    return true;
  }
  bool at_end() const { return _pos == _in.size(); }
  std::size_t remaining() const { return _in.size() - _pos; }
  /// Moves past `n` bytes (the caller took them from the input itself).
  bool pass(std::size_t n) {
    if (n > remaining()) return fail("truncated");
    _pos += n;
    return true;
  }
  bool fail(const char* what) {
    if (_error == nullptr) _error = what;
    return false;
  }
  const char* error() const { return _error != nullptr ? _error : "no error"; }

 private:
  std::string_view _in;
  std::size_t _pos = 0;
  const char* _error = nullptr;
};

}  // namespace fleettwin::aggregate
