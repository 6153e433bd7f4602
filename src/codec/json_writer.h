#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fleettwin::codec {

/// Longest text write_json_double or write_json_int can produce ("-2.2250738585072014e-308" is 24).
inline constexpr std::size_t kMaxJsonNumberChars = 32;

/// Writes `v` in the shortest form that reads back to the same double (std::to_chars), so JSON round trips
/// are exact. -0.0 becomes "-0.0" (a bare "-0" would parse back as the integer 0 and lose the sign);
/// NaN and infinities, which JSON cannot express, become null. `p` needs kMaxJsonNumberChars bytes.
/// Returns the end of the written text.
char* write_json_double(char* p, double v);

/// Writes an integer; `p` needs kMaxJsonNumberChars bytes.
char* write_json_int(char* p, int64_t v);

/// Appends `s` as a quoted JSON string. `"`, `\` and control characters are escaped; valid UTF-8 passes
/// through unchanged; bytes that are not valid UTF-8 become U+FFFD so the output is always valid JSON.
void append_json_string(std::string& out, std::string_view s);

void append_json_double(std::string& out, double v);
void append_json_int(std::string& out, int64_t v);

/// Appends compact JSON to a caller-owned string and places the commas itself, so the document builders
/// (twins, alerts, commands, the Avro schema) never repeat separator and escaping logic. Not validating:
/// keys and values must be called in a sensible order. Used by one thread at a time.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : _out(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& string(std::string_view v);
  JsonWriter& number(double v);
  JsonWriter& integer(int64_t v);
  JsonWriter& boolean(bool v);
  JsonWriter& null();
  /// Appends `json` verbatim as one value; the caller guarantees it is valid JSON value text.
  JsonWriter& raw(std::string_view json);

 private:
  /// Starts an object or array with `bracket`, after a comma when a value came before it.
  JsonWriter& open(char bracket);
  /// Ends an object or array with `bracket`.
  JsonWriter& close(char bracket);
  /// Writes one value by `append()`, after a comma when a value came before it.
  template <typename F>
  JsonWriter& write_value(F&& append) {
    separate();
    append();
    _need_comma = true;
    return *this;
  }
  void separate() {
    if (_need_comma) _out.push_back(',');
  }

  std::string& _out;
  bool _need_comma = false;  // true after a complete value or member, so the next one needs a comma
};

}  // namespace fleettwin::codec
