#pragma once

// The SQL text of the PostgreSQL store that needs no server: number formatting, identifiers, telemetry
// partitions, the COPY text format of a telemetry row, the twin's `fields` document and the translation of
// the filter language. Pure functions (unit-tested in tests/unit/store/pg_sql_test.cc); any thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "core/twin.h"
#include "store/filter.h"
#include "store/filter_sql.h"
#include "store/postgres/pg_conn.h"
#include "store/twin_store.h"

namespace fleettwin::store {

/// A double as PostgreSQL's float8 input reads it back exactly: the shortest round-trip form, "Infinity" and
/// "-Infinity" for the infinities. (NaN is never written: it is absent, NULL.)
std::string sql_double(double v);

/// "name" quoted as an SQL identifier (inner quotes doubled).
std::string quote_ident(std::string_view name);

/// Telemetry is partitioned by device time, one partition per UTC day (see pg_schema.cc). The day of `ts_ms`
/// (days since the epoch, rounded down: negative before 1970).
inline constexpr int64_t kDayMs = 86'400'000;
int64_t partition_day(int64_t ts_ms);
/// The partition table of `day`: telemetry_d20454 (telemetry_dm3 for day -3).
std::string partition_name(int64_t day);
/// The day of a partition_name() (0 for another name).
int64_t partition_day_of(std::string_view name);
/// CREATE TABLE IF NOT EXISTS ... PARTITION OF telemetry FOR VALUES FROM (day start) TO (next day start).
std::string create_partition_sql(int64_t day);

/// Appends one telemetry row in COPY's text format: car, ts, seq, lat, lon, one value per catalog signal
/// (a row sized for another catalog copies what it has, the rest NULL), score, flags; tab-separated,
/// NULL as \N, newline-terminated.
void append_copy_row(std::string& out, const TelemetryRow& row, const catalog::Catalog& catalog);
/// Appends one twin in COPY's text format, the columns of `twins` in order: id, version, seq, ts, status,
/// online, last_seen, lat, lon, score, fields (twin_fields_json of `fields`), rest (encode_twin_rest, bytea).
void append_copy_twin(std::string& out, const core::Twin& twin, const std::vector<FilterField>& fields,
                      const catalog::Catalog& catalog);
/// Appends `text` escaped for COPY's text format (backslash, tab, newline, carriage return).
void append_copy_text(std::string& out, std::string_view text);

/// The twin fields a filter or sort may name that are not columns of `twins` (pg_schema.cc): they live in
/// the `fields` JSONB document, keyed by path.
std::vector<FilterField> document_fields(const catalog::Catalog& catalog);
/// The `fields` document of a twin: {"<path>": value, ...} for each of `fields`; a NaN or infinite number is
/// null (as NaN is NULL in a column).
std::string twin_fields_json(const core::Twin& twin, const std::vector<FilterField>& fields);
/// `text` as a JSON string literal.
std::string json_string(std::string_view text);

/// Builds the WHERE/ORDER BY parts of a twin listing from a Filter. Placeholders are $N in the order of
/// params(): every value, the user's literals and field paths included, is a parameter, never SQL text.
class PgTwinSql {
 public:
  /// SQL expression of the field: its column, or its value in `fields` cast to the field's type.
  std::string field(const FilterField& field);
  /// A boolean SQL expression equal to matches(filter, twin) for every stored twin (never NULL, so NOT and
  /// OR behave as in the reference evaluator even where a NaN number is stored as NULL).
  std::string filter(const Filter& filter);
  /// A value of a field, as a typed parameter ($N::float8, $N::text, $N::boolean).
  std::string value(const FilterValue& value);
  /// Placeholder of a new text parameter.
  std::string param(std::string_view text);
  std::string param(int64_t v);

  const PgParams& params() const { return _params; }

 private:
  PgParams _params;
  int _count = 0;
};

}  // namespace fleettwin::store
