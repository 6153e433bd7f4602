#include "sim/failure.h"

#include <charconv>
#include <istream>
#include <ostream>

#include "core/enum_names.h"

namespace fleettwin::sim {

namespace {

constexpr core::EnumName<FailureMode> kNames[] = {
    {FailureMode::kTyrePressureLoss, "tyre_pressure_loss"},
    {FailureMode::kShockAbsorberFailure, "shock_absorber_failure"},
    {FailureMode::kDriveShaftDegradation, "drive_shaft_degradation"},
    {FailureMode::kCoolantOverheating, "coolant_overheating"},
    {FailureMode::kBatteryCellDegradation, "battery_cell_degradation"},
    {FailureMode::kOutdatedFirmware, "outdated_firmware"}};
static_assert(std::size(kNames) == kFailureModeCount, "every failure mode needs its stable name");

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  out += '"';
}

// A parser for the one flat shape ground truth uses (an object of strings and integers). Ground truth is
// written by us and read back by evaluation tools; pulling a JSON library into the sim for it (the codec
// module owns JSON for telemetry) is not worth a dependency.
class FlatJson {
 public:
  explicit FlatJson(std::string_view s) : _s(s) {}

  void skip_ws() {
    while (_i < _s.size() && (_s[_i] == ' ' || _s[_i] == '\t' || _s[_i] == '\r' || _s[_i] == '\n')) ++_i;
  }
  bool eat(char c) {
    skip_ws();
    if (_i < _s.size() && _s[_i] == c) {
      ++_i;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip_ws();
    return _i == _s.size();
  }
  char peek() {
    skip_ws();
    return _i < _s.size() ? _s[_i] : '\0';
  }

  bool string(std::string& out, std::string* error) {
    out.clear();
    if (!eat('"')) return fail(error, "expected a string");
    while (_i < _s.size()) {
      const char c = _s[_i++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (_i >= _s.size()) break;
      const char e = _s[_i++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp = 0;
          if (_i + 4 > _s.size()) return fail(error, "bad \\u escape");
          auto [p, ec] = std::from_chars(_s.data() + _i, _s.data() + _i + 4, cp, 16);
          if (ec != std::errc() || p != _s.data() + _i + 4) return fail(error, "bad \\u escape");
          _i += 4;
          // Ids are ASCII; anything wider is kept as UTF-8 without surrogate pairing.
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
          } else {
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
          }
          break;
        }
        default:
          return fail(error, "bad escape");
      }
    }
    return fail(error, "unterminated string");
  }

  bool integer(int64_t& out, std::string* error) {
    skip_ws();
    auto [p, ec] = std::from_chars(_s.data() + _i, _s.data() + _s.size(), out);
    if (ec != std::errc()) return fail(error, "expected an integer");
    _i = static_cast<std::size_t>(p - _s.data());
    // Reject fractions/exponents rather than silently truncating a timestamp.
    if (_i < _s.size() && (_s[_i] == '.' || _s[_i] == 'e' || _s[_i] == 'E'))
      return fail(error, "expected an integer");
    return true;
  }

  // Skips a scalar value of an unknown key (string, number, true/false/null).
  bool skip_value(std::string* error) {
    const char c = peek();
    if (c == '"') {
      std::string ignored;
      return string(ignored, error);
    }
    if (c == '{' || c == '[') return fail(error, "nested values are not supported");
    while (_i < _s.size() && _s[_i] != ',' && _s[_i] != '}') ++_i;
    return true;
  }

  static bool fail(std::string* error, const char* why) {
    if (error) *error = why;
    return false;
  }

 private:
  std::string_view _s;
  std::size_t _i = 0;
};

}  // namespace

std::string_view to_string(FailureMode mode) { return core::name_of(kNames, mode, ""); }

std::optional<FailureMode> failure_mode_from_string(std::string_view name) {
  return core::parse(kNames, name);
}

std::string to_json_line(const GroundTruth& g) {
  std::string out;
  out.reserve(96);
  out += "{\"car\":";
  append_json_string(out, g.car);
  out += ",\"mode\":";
  append_json_string(out, to_string(g.mode));
  out += ",\"onset_ts\":";
  out += std::to_string(g.onset_ts);
  out += ",\"full_ts\":";
  out += std::to_string(g.full_ts);
  out += '}';
  return out;
}

void write_ground_truth(std::ostream& out, const std::vector<GroundTruth>& records) {
  for (const auto& g : records) out << to_json_line(g) << '\n';
}

bool parse_ground_truth_line(std::string_view line, GroundTruth& out, std::string* error) {
  FlatJson p(line);
  if (!p.eat('{')) return FlatJson::fail(error, "expected '{'");
  bool have_car = false, have_mode = false, have_onset = false, have_full = false;
  std::string key, text;
  if (!p.eat('}')) {
    do {
      if (!p.string(key, error)) return false;
      if (!p.eat(':')) return FlatJson::fail(error, "expected ':'");
      if (key == "car") {
        if (!p.string(out.car, error)) return false;
        have_car = true;
      } else if (key == "mode") {
        if (!p.string(text, error)) return false;
        auto mode = failure_mode_from_string(text);
        if (!mode) {
          if (error) *error = "unknown failure mode \"" + text + "\"";
          return false;
        }
        out.mode = *mode;
        have_mode = true;
      } else if (key == "onset_ts") {
        if (!p.integer(out.onset_ts, error)) return false;
        have_onset = true;
      } else if (key == "full_ts") {
        if (!p.integer(out.full_ts, error)) return false;
        have_full = true;
      } else if (!p.skip_value(error)) {
        return false;
      }
    } while (p.eat(','));
    if (!p.eat('}')) return FlatJson::fail(error, "expected ',' or '}'");
  }
  if (!p.at_end()) return FlatJson::fail(error, "trailing characters after the object");
  if (!have_car) return FlatJson::fail(error, "missing \"car\"");
  if (!have_mode) return FlatJson::fail(error, "missing \"mode\"");
  if (!have_onset) return FlatJson::fail(error, "missing \"onset_ts\"");
  if (!have_full) return FlatJson::fail(error, "missing \"full_ts\"");
  return true;
}

bool read_ground_truth(std::istream& in, std::vector<GroundTruth>& out, std::string* error) {
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    GroundTruth g;
    std::string why;
    if (!parse_ground_truth_line(line, g, &why)) {
      if (error) *error = "line " + std::to_string(line_no) + ": " + why;
      return false;
    }
    out.push_back(std::move(g));
  }
  return true;
}

}  // namespace fleettwin::sim
