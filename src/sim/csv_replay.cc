#include "sim/csv_replay.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <istream>

namespace fleettwin::sim {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

void split(std::string_view line, std::vector<std::string_view>& cells) {
  cells.clear();
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      cells.push_back(trim(line.substr(start)));
      return;
    }
    cells.push_back(trim(line.substr(start, comma - start)));
    start = comma + 1;
  }
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

// Parses exactly `n` digits at s[i..] into v.
bool digits(std::string_view s, std::size_t i, std::size_t n, int& v) {
  if (i + n > s.size()) return false;
  v = 0;
  for (std::size_t k = i; k < i + n; ++k) {
    if (s[k] < '0' || s[k] > '9') return false;
    v = v * 10 + (s[k] - '0');
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Milliseconds from a fraction's digits (after the '.'), rounded half up; returns -1 when not digits.
int64_t fraction_ms(std::string_view f) {
  if (f.empty()) return -1;
  int64_t ms = 0;
  for (std::size_t k = 0; k < f.size(); ++k) {
    if (f[k] < '0' || f[k] > '9') return -1;
    if (k < 3) ms = ms * 10 + (f[k] - '0');
  }
  for (std::size_t k = f.size(); k < 3; ++k) ms *= 10;
  if (f.size() > 3 && f[3] >= '5') ++ms;
  return ms;
}

std::optional<int64_t> parse_iso(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) || s.size() < 19 || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec))
    return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0) || h > 23 || mi > 59 ||
      sec > 59)
    return std::nullopt;
  std::size_t i = 19;
  int64_t ms = 0;
  if (i < s.size() && s[i] == '.') {
    std::size_t j = i + 1;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    ms = fraction_ms(s.substr(i + 1, j - i - 1));
    if (ms < 0) return std::nullopt;
    i = j;
  }
  int64_t offset_min = 0;
  if (i < s.size()) {
    const std::string_view zone = s.substr(i);
    if (zone == "Z" || zone == "z") {
      // UTC
    } else if ((zone[0] == '+' || zone[0] == '-') && zone.size() == 6 && zone[3] == ':') {
      int oh, om;
      if (!digits(zone, 1, 2, oh) || !digits(zone, 4, 2, om) || oh > 23 || om > 59) return std::nullopt;
      offset_min = (zone[0] == '+' ? 1 : -1) * (int64_t{oh} * 60 + om);
    } else {
      return std::nullopt;
    }
  }
  const int64_t secs = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86'400 +
                       int64_t{h} * 3600 + int64_t{mi} * 60 + sec - offset_min * 60;
  return secs * 1000 + ms;
}

}  // namespace

std::string CsvError::to_string() const {
  std::string out = "line " + std::to_string(line);
  if (column > 0) {
    out += ", column " + std::to_string(column);
    if (!column_name.empty()) out += " (" + column_name + ")";
  }
  return out + ": " + message;
}

std::optional<int64_t> parse_time_ms(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (s.size() >= 19 && s[4] == '-') return parse_iso(s);
  const std::size_t dot = s.find('.');
  int64_t whole = 0;
  const std::string_view int_part = s.substr(0, dot);
  if (int_part.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(int_part.data(), int_part.data() + int_part.size(), whole);
  if (ec != std::errc() || p != int_part.data() + int_part.size() || whole < 0) return std::nullopt;
  if (dot == std::string_view::npos) return whole;  // epoch ms
  const int64_t ms = fraction_ms(s.substr(dot + 1));
  if (ms < 0 || whole > 9'000'000'000'000) return std::nullopt;
  return whole * 1000 + ms;  // epoch seconds with a fraction
}

CsvReplay::CsvReplay(std::istream& in, const BoundingBox& box) : _in(&in), _box(box) {}

CsvReplay::CsvReplay(const std::string& path, const BoundingBox& box)
    : _owned(std::make_unique<std::ifstream>(path)), _in(_owned.get()), _box(box) {
  if (!*_owned) {
    _fatal = true;
    _error = {0, 0, {}, "cannot open " + path};
  }
}

CsvReplay::~CsvReplay() = default;

CsvReplay::Status CsvReplay::fail(std::size_t column, std::string message) {
  _error.line = _line;
  _error.column = column;
  _error.column_name = column > 0 && column <= _names.size() ? _names[column - 1] : std::string();
  _error.message = std::move(message);
  return Status::kError;
}

bool CsvReplay::read_header() {
  _header_done = true;
  _fatal = true;  // until the header is known good
  while (std::getline(*_in, _text)) {
    ++_line;
    if (!blank(_text)) break;
  }
  if (blank(_text)) {
    fail(0, "empty file: expected a header row");
    return false;
  }
  std::string_view header = _text;
  if (header.substr(0, 3) == "\xEF\xBB\xBF") header.remove_prefix(3);  // UTF-8 byte order mark
  split(header, _cells);
  _columns = _cells.size();
  _names.clear();
  for (auto c : _cells) _names.push_back(lower(c));
  _signal_col.fill(-1);
  for (std::size_t i = 0; i < _names.size(); ++i) {
    const std::string& n = _names[i];
    for (std::size_t j = 0; j < i; ++j)
      if (_names[j] == n && !n.empty()) {
        fail(i + 1, "duplicate column \"" + n + "\"");
        return false;
      }
    const int col = static_cast<int>(i);
    if (n == "time")
      _time_col = col;
    else if (n == "car")
      _car_col = col;
    else if (n == "lat")
      _lat_col = col;
    else if (n == "lon")
      _lon_col = col;
    else if (auto s = core::signal_index(n))
      _signal_col[*s] = col;
  }
  std::string missing;
  auto need = [&](int col, std::string_view name) {
    if (col >= 0) return;
    if (!missing.empty()) missing += ", ";
    missing += name;
  };
  need(_time_col, "time");
  need(_car_col, "car");
  for (std::size_t s = 0; s < core::kSignalCount; ++s) need(_signal_col[s], core::kSignals[s].name);
  if (!missing.empty()) {
    fail(0, "header lacks column(s): " + missing);
    return false;
  }
  _fatal = false;
  return true;
}

CsvReplay::Status CsvReplay::next(core::Telemetry& out) {
  if (_fatal) return Status::kError;
  if (!_header_done && !read_header()) return Status::kError;
  do {
    if (!std::getline(*_in, _text)) {
      if (_in->bad()) {
        _fatal = true;
        return fail(0, "read error");
      }
      return Status::kEnd;
    }
    ++_line;
  } while (blank(_text));

  split(_text, _cells);
  if (_cells.size() != _columns)
    return fail(0, "row has " + std::to_string(_cells.size()) + " fields, the header has " +
                       std::to_string(_columns));

  const std::string_view time_cell = _cells[_time_col];
  auto ts = parse_time_ms(time_cell);
  if (!ts)
    return fail(_time_col + 1, "not a time (epoch ms, epoch seconds with a fraction, or ISO-8601): \"" +
                                   std::string(time_cell) + "\"");
  const std::string_view car = _cells[_car_col];
  if (!core::valid_car_id(car))
    return fail(_car_col + 1, "not a car id (1..64 of [A-Za-z0-9_-]): \"" + std::string(car) + "\"");

  auto number = [&](int col, double& v) -> bool {
    const std::string_view cell = _cells[col];
    auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
    if (ec != std::errc() || p != cell.data() + cell.size() || cell.empty() || !std::isfinite(v)) {
      fail(col + 1, "not a number: \"" + std::string(cell) + "\"");
      return false;
    }
    return true;
  };
  out.values.resize(core::kSignalCount);
  out.out_of_range.clear();
  for (std::size_t s = 0; s < core::kSignalCount; ++s) {
    double v = core::kAbsent;
    if (_cells[_signal_col[s]].empty()) {  // a car may send any subset of the signals
      out.values[s] = v;
      continue;
    }
    if (!number(_signal_col[s], v)) return Status::kError;
    if (core::kSignals[s].type == core::SignalType::kInt && v != std::floor(v))
      return fail(_signal_col[s] + 1, "not a whole number: \"" + std::string(_cells[_signal_col[s]]) + "\"");
    out.values[s] = v;
    // Kept and flagged, not rejected: an implausible reading is often what a failing part looks like.
    if (v < core::kSignals[s].min || v > core::kSignals[s].max)
      out.out_of_range.push_back(static_cast<uint16_t>(s));
  }
  double lat = _box.centre_lat(), lon = _box.centre_lon();
  if (_lat_col >= 0 && !number(_lat_col, lat)) return Status::kError;
  if (_lon_col >= 0 && !number(_lon_col, lon)) return Status::kError;

  // Only a fully parsed row takes a seq: a rejected row must not leave a gap in the car's sequence.
  out.car.assign(car);
  out.ts = *ts;
  out.seq = ++_seq[out.car];
  out.lat = lat;
  out.lon = lon;
  return Status::kRow;
}

}  // namespace fleettwin::sim
