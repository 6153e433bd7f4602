#pragma once

// The schema of the PostgreSQL store: tables, the telemetry columns of the catalog in use, partitions.
// Used by PostgresStore on its own thread.

#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "store/postgres/pg_conn.h"

namespace fleettwin::store {

/// The schema version this build writes (fleettwin_meta.schema_version); another one is refused.
inline constexpr int kPgSchemaVersion = 1;

/// Each catalog signal's telemetry column, quoted, in catalog order.
using PgSignalColumns = std::vector<std::string>;

/// Creates the tables when they are missing and brings telemetry up to `catalog`: every catalog signal
/// without a column gets one (ALTER TABLE ... ADD COLUMN: older rows read it as NULL, absent); a signal
/// renamed with its old name as an alias keeps the old name's column; columns of signals the catalog no
/// longer has are kept and not read. One transaction under an advisory lock, so stores opening at once do
/// not race. Throws PgError for another schema version or a catalog whose fields cannot be columns.
PgSignalColumns prepare_pg_schema(PgConnection& conn, const catalog::Catalog& catalog);

/// Creates the telemetry partitions of `days` that do not exist yet (pg_sql.h: partition_day), in a
/// transaction of their own under the schema's advisory lock: creating a partition locks the parent table,
/// so it must not wait inside a batch's transaction.
void create_partitions(PgConnection& conn, const std::vector<int64_t>& days);

/// Drops the telemetry partition `name` (a partition_name()) if it still exists, in a transaction of its
/// own under the schema's advisory lock. Returns 0 (for PostgresStore's reconnecting()).
int drop_partition(PgConnection& conn, const std::string& name);

}  // namespace fleettwin::store
