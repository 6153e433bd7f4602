#pragma once

// What the SQL stores (sqlite/, postgres/) share of reading their twins, alerts and commands tables: the
// columns a read selects and how a row of them becomes a Twin, an Alert or a Command. The tables have the
// same columns in both (sqlite_schema.cc, pg_schema.cc); each store reads a column its own way.

#include <cstdint>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "core/alert.h"
#include "core/twin.h"
#include "store/twin_blob.h"

namespace fleettwin::store {

/// The columns of twins that read_twin_row() reads, in its order.
inline constexpr const char* kTwinRowColumns =
    "id, version, seq, ts, status, online, last_seen, lat, lon, score, rest";
/// The columns of alerts that read_alert_row() reads, in its order.
inline constexpr const char* kAlertRowColumns =
    "id, car, kind, raised, ts, score, threshold, signals, model_version, acknowledged, feedback, "
    "feedback_note,"
    " feedback_ts";
/// The columns of commands that read_command_row() reads, in its order.
inline constexpr const char* kCommandRowColumns = "id, car, name, params, created, expires, status";

/// Reads the columns of one result row, from column 0 on, into fields by their type: a string from text(k),
/// an integer from i64(k), a double from real(k) (NULL reads as NaN: absent), a bool from boolean(k), a list
/// of strings (encode_strings) and a health status from their text. `Row` is the store's driver row.
template <typename Row>
class ColumnReader {
 public:
  explicit ColumnReader(const Row& row) : _row(row) {}
  /// Reads the next columns into `fields`, in order.
  template <typename... Fields>
  ColumnReader& read(Fields&... fields) {
    (get(fields), ...);
    return *this;
  }
  /// The column the next read starts at.
  int next() const { return _k; }

 private:
  void get(std::string& v) { v = std::string(_row.text(_k++)); }
  void get(int64_t& v) { v = _row.i64(_k++); }
  void get(double& v) { v = _row.real(_k++); }
  void get(bool& v) { v = _row.boolean(_k++); }
  void get(std::vector<std::string>& v) { v = decode_strings(_row.blob(_k++)); }
  void get(core::HealthStatus& v) { v = core::health_status_from_string(_row.text(_k++)); }

  const Row& _row;
  int _k = 0;
};

/// A row of kTwinRowColumns; the signals of `rest` resolved with `catalog`.
template <typename Row>
core::Twin read_twin_row(const Row& row, const catalog::Catalog& catalog) {
  core::Twin t;
  ColumnReader<Row> columns(row);
  columns.read(t.id, t.version, t.reported.seq, t.reported.ts, t.health.status, t.online, t.last_seen,
               t.reported.lat, t.reported.lon, t.health.score);
  decode_twin_rest(row.blob(columns.next()), t, catalog);
  return t;
}

/// A row of kAlertRowColumns.
template <typename Row>
core::Alert read_alert_row(const Row& row) {
  core::Alert a;
  ColumnReader<Row>(row).read(a.id, a.car, a.kind, a.raised, a.ts, a.score, a.threshold, a.signals,
                              a.model_version, a.acknowledged, a.feedback, a.feedback_note, a.feedback_ts);
  return a;
}

/// A row of kCommandRowColumns.
template <typename Row>
core::Command read_command_row(const Row& row) {
  core::Command c;
  ColumnReader<Row>(row).read(c.id, c.car, c.name, c.params_json, c.created, c.expires, c.status);
  return c;
}

}  // namespace fleettwin::store
