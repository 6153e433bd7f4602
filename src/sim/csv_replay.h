#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/signals.h"
#include "core/telemetry.h"
#include "sim/car.h"

namespace fleettwin::sim {

/// Where and why a CSV file or row was rejected. Plain value.
struct CsvError {
  std::size_t line = 0;    ///< 1-based line of the file (the header is line 1); 0: the file could not be read
  std::size_t column = 0;  ///< 1-based column; 0 when the problem is not one cell
  std::string column_name;  ///< header name of that column, when known
  std::string message;
  /// e.g. `line 7, column 3 (coolant_temp): not a number: "abc"`.
  std::string to_string() const;
};

/// Parses a CSV `time` cell: integer epoch ms ("1764144000000"), epoch seconds with a fraction
/// ("1764144000.25"), or ISO-8601 ("2026-11-26T08:00:00Z", "...T08:00:00.250Z", "+01:00" offsets, a space
/// instead of the T; no zone = UTC). Returns ms since the epoch or nullopt. A bare integer is always ms.
std::optional<int64_t> parse_time_ms(std::string_view text);

/// Replays recorded telemetry from a CSV file in the cardata-v1 format: a header row naming the columns
/// `time,car,` + the 18 signals (any order; found by name, case-insensitive; extra columns are ignored), then
/// one row per message. Optional `lat` and `lon` columns give the position; without them it is the
/// bounding box's centre. Each car's messages get seq 1, 2, 3... in file order. Cells may be wrapped in
/// double quotes but must not contain commas. An empty signal cell is a signal the row does not carry
/// (core::kAbsent). A bad row (a cell that is not a number, a fractional int signal, a bad time or car id)
/// yields kError with its line and column and the replay can continue with the next row; a bad header (or
/// unreadable file) is final. A value outside its signal's plausible range is not an error: the row is
/// replayed with the value, flagged in Telemetry::out_of_range (as ingest flags it again when it decodes
/// the replayed message), since an implausible reading is often what a failing sensor or part looks like.
/// Used by one thread (the replaying producer loop).
class CsvReplay {
 public:
  enum class Status : uint8_t { kRow, kEnd, kError };

  /// Reads from `in`, which must outlive the replay.
  explicit CsvReplay(std::istream& in, const BoundingBox& box = {});
  /// Opens the file at `path`; a file that cannot be opened makes the first next() return kError.
  explicit CsvReplay(const std::string& path, const BoundingBox& box = {});
  ~CsvReplay();
  CsvReplay(const CsvReplay&) = delete;
  CsvReplay& operator=(const CsvReplay&) = delete;

  /// Next row into `out` (kRow), end of file (kEnd) or a rejected row/header (kError, see error(); `out`
  /// may then be partly overwritten).
  Status next(core::Telemetry& out);
  /// The last error; meaningful after next() returned kError.
  const CsvError& error() const { return _error; }
  /// Line number of the last line read.
  std::size_t line() const { return _line; }

 private:
  bool read_header();
  Status fail(std::size_t column, std::string message);

  std::unique_ptr<std::istream> _owned;
  std::istream* _in;
  BoundingBox _box;
  bool _header_done = false;
  bool _fatal = false;
  std::size_t _line = 0;
  std::size_t _columns = 0;
  std::vector<std::string> _names;
  int _time_col = -1, _car_col = -1, _lat_col = -1, _lon_col = -1;
  std::array<int, core::kSignalCount> _signal_col{};
  std::string _text;
  std::vector<std::string_view> _cells;
  std::unordered_map<std::string, int64_t> _seq;
  CsvError _error;
};

}  // namespace fleettwin::sim
