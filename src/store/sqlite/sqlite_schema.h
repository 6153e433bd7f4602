#pragma once

// The SQL of the SQLite store that depends on the signal catalog: the schema (one telemetry column per
// signal, named by its field), the upgrade of an existing file to the catalog in use, and the telemetry
// statements. Used by SqliteStore on its own thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "store/sqlite/sqlite_db.h"

namespace fleettwin::store {

/// The schema version this build writes. 2: numeric columns nullable (NaN). 3: telemetry `flags`, twin blobs
/// by signal name (store/twin_blob.h). A version-2 file is upgraded on open; anything else is refused.
inline constexpr int64_t kSchemaVersion = 3;

/// Creates the tables (a new file gets one telemetry column per signal of `catalog`), checks the file's
/// schema version and brings an older one or one made for another catalog up to date: every catalog signal
/// without a telemetry column gets one (ALTER TABLE ... ADD COLUMN, so old rows read it as NULL: absent);
/// columns of signals the catalog no longer has are kept and ignored. A signal renamed with its old name as
/// an alias keeps the old name's column, so its history reads on under the new name. Run inside a write
/// transaction. Throws SqliteError for an unknown schema version or a signal whose column name is taken.
/// Returns each catalog signal's column (quoted), in catalog order.
using SignalColumns = std::vector<std::string>;
SignalColumns prepare_schema(Db& db, const catalog::Catalog& catalog, const std::string& path);

/// INSERT OR IGNORE of one telemetry row: ?1 gen, ?2 car, ?3 ts, ?4 seq, ?5 lat, ?6 lon, then one parameter
/// per catalog signal (?7 ...), score (telemetry_score_param) and flags (telemetry_flags_param).
std::string insert_telemetry_sql(const SignalColumns& columns);
inline int telemetry_score_param(const catalog::Catalog& c) { return 7 + static_cast<int>(c.size()); }
inline int telemetry_flags_param(const catalog::Catalog& c) { return 8 + static_cast<int>(c.size()); }

/// One car's history (?1 car, ?2 from, ?3 to, ?4 limit): columns car, ts, seq, lat, lon, one per catalog
/// signal (from column 5), score (history_score_column), flags (history_flags_column).
std::string history_sql(const SignalColumns& columns);
inline int history_score_column(const catalog::Catalog& c) { return 5 + static_cast<int>(c.size()); }
inline int history_flags_column(const catalog::Catalog& c) { return 6 + static_cast<int>(c.size()); }

}  // namespace fleettwin::store
