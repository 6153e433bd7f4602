#include "codec/json_writer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

namespace fleettwin::codec {

namespace {

// Length of the valid UTF-8 sequence starting at s[i] (RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF), or 0 when the bytes there are not one.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// 0: copy as is; 1: escape; 2: first byte of a non-ASCII sequence (validate).
constexpr std::array<unsigned char, 256> kCharClass = [] {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 1;
  t['"'] = 1;
  t['\\'] = 1;
  for (int c = 0x80; c < 0x100; ++c) t[c] = 2;
  return t;
}();

void append_escape(std::string& out, unsigned char c) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    default:
      break;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
  out.append(u, 6);
}

}  // namespace

char* write_json_double(char* p, double v) {
  if (!std::isfinite(v)) {
    static constexpr std::string_view kNull = "null";
    return std::copy(kNull.begin(), kNull.end(), p);
  }
  if (v == 0 && std::signbit(v)) {
    static constexpr std::string_view kNegZero = "-0.0";
    return std::copy(kNegZero.begin(), kNegZero.end(), p);
  }
  // The shortest form of a large whole double can be plain digits ("364144055555555524608"), which JSON
  // parsers read as an integer and refuse beyond 64 bits. Past 2^53 (where doubles stop being every integer)
  // the exponent form keeps it a double in every reader.
  if (std::fabs(v) >= 0x1p53)
    return std::to_chars(p, p + kMaxJsonNumberChars, v, std::chars_format::scientific).ptr;
  return std::to_chars(p, p + kMaxJsonNumberChars, v).ptr;
}

char* write_json_int(char* p, int64_t v) { return std::to_chars(p, p + kMaxJsonNumberChars, v).ptr; }

void append_json_double(std::string& out, double v) {
  char buf[kMaxJsonNumberChars];
  out.append(buf, static_cast<std::size_t>(write_json_double(buf, v) - buf));
}

void append_json_int(std::string& out, int64_t v) {
  char buf[kMaxJsonNumberChars];
  out.append(buf, static_cast<std::size_t>(write_json_int(buf, v) - buf));
}

namespace {

// Index of the first byte that is not copied verbatim (control, '"', '\\', non-ASCII), or s.size().
// Eight bytes per step (SWAR): a byte loop was a fifth of the time of writing a twin document.
std::size_t first_special(std::string_view s) {
  constexpr uint64_t k01 = 0x0101010101010101ULL;
  constexpr uint64_t k80 = 0x8080808080808080ULL;
  const auto clean = [&](std::size_t at) {
    uint64_t w;
    std::memcpy(&w, s.data() + at, 8);
    const uint64_t quote = w ^ (k01 * '"');
    const uint64_t backslash = w ^ (k01 * '\\');
    // Per byte, the high bit of each term is set for: < 0x20, == '"', == '\\', >= 0x80 (exact for "any").
    const uint64_t special =
        ((w - k01 * 0x20) & ~w) | ((quote - k01) & ~quote) | ((backslash - k01) & ~backslash) | w;
    return (special & k80) == 0;
  };
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    if (!clean(i)) break;
  }
  // The tail as one overlapping word rather than byte by byte.
  if (i == s.size() || (i + 8 > s.size() && s.size() >= 8 && clean(s.size() - 8))) return s.size();
  for (; i < s.size(); ++i) {
    if (kCharClass[static_cast<unsigned char>(s[i])] != 0) return i;
  }
  return s.size();
}

// Appends `prefix` (0: none), `"s"` and `suffix` (0: none) with a single append when `s` is short and needs
// no escaping, the case of nearly every key and value we write; returns false, having appended nothing,
// otherwise. One append instead of four keeps per-key overhead low (a twin has ~60 keys).
bool append_plain_string(std::string& out, std::string_view s, char prefix, char suffix) {
  constexpr std::size_t kMax = 120;
  if (s.size() > kMax || first_special(s) != s.size()) return false;
  char buf[kMax + 4];
  char* p = buf;
  if (prefix) *p++ = prefix;
  *p++ = '"';
  // An empty view may have no data at all (a default string_view): memcpy must not be given its null.
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  p += s.size();
  *p++ = '"';
  if (suffix) *p++ = suffix;
  out.append(buf, static_cast<std::size_t>(p - buf));  // (ptr, len): the iterator overload is far slower
  return true;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  if (append_plain_string(out, s, 0, 0)) return;
  const std::size_t first = first_special(s);
  out.push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes that need no escaping
  std::size_t i = first;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const unsigned char cls = kCharClass[c];
    if (cls == 0) {
      ++i;
      continue;
    }
    if (cls == 2) {
      if (const std::size_t n = utf8_sequence_length(s, i)) {
        i += n;
        continue;
      }
      out.append(s.data() + run, i - run);
      out += "\xEF\xBF\xBD";  // U+FFFD: keeps the document valid UTF-8, which JSON parsers require
    } else {
      out.append(s.data() + run, i - run);
      append_escape(out, c);
    }
    run = ++i;
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

JsonWriter& JsonWriter::open(char bracket) {
  separate();
  _out.push_back(bracket);
  _need_comma = false;
  return *this;
}

JsonWriter& JsonWriter::close(char bracket) {
  _out.push_back(bracket);
  _need_comma = true;
  return *this;
}

JsonWriter& JsonWriter::begin_object() { return open('{'); }
JsonWriter& JsonWriter::end_object() { return close('}'); }
JsonWriter& JsonWriter::begin_array() { return open('['); }
JsonWriter& JsonWriter::end_array() { return close(']'); }

JsonWriter& JsonWriter::key(std::string_view k) {
  if (!append_plain_string(_out, k, _need_comma ? ',' : 0, ':')) {
    separate();
    append_json_string(_out, k);
    _out.push_back(':');
  }
  _need_comma = false;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view v) {
  if (!append_plain_string(_out, v, _need_comma ? ',' : 0, 0)) {
    separate();
    append_json_string(_out, v);
  }
  _need_comma = true;
  return *this;
}

JsonWriter& JsonWriter::number(double v) {
  return write_value([&] { append_json_double(_out, v); });
}

JsonWriter& JsonWriter::integer(int64_t v) {
  return write_value([&] { append_json_int(_out, v); });
}

JsonWriter& JsonWriter::boolean(bool v) {
  return write_value([&] { _out += v ? "true" : "false"; });
}

JsonWriter& JsonWriter::null() {
  return write_value([&] { _out += "null"; });
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  return write_value([&] { _out.append(json); });
}

}  // namespace fleettwin::codec
