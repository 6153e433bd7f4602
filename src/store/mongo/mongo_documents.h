#pragma once

// The documents of the twins, telemetry, alerts and commands collections (DESIGN.md §4) and their
// conditional-write guards: domain values <-> BSON, nothing else. Times are BSON dates; NaN numbers are null.

#include "catalog/catalog.h"
#include "core/alert.h"
#include "core/twin.h"
#include "store/mongo/mongo_bson.h"
#include "store/twin_store.h"

namespace fleettwin::store::mongo {

// Signals follow the store's catalog: a document carries the signals it holds, each under its catalog field
// (identifier form, so a VSS name's dots never read as a path), and `flags`, the fields of the flagged
// (out of range) ones, left out when none. A reader sizes the signals to its catalog: a missing key is an
// absent signal, a key its catalog lacks is ignored.

/// The twin document, _id the car: reported {seq, ts, lat, lon, present signals, flags}, metadata {field:
/// date} for every catalog signal (epoch: never), ...
Bson twin_doc(const core::Twin& t, const catalog::Catalog& catalog);
core::Twin read_twin(const bson_t* d, const catalog::Catalog& catalog);
/// The conditional-upsert filter of a twin: the stored one is older (lower seq, or same seq and lower
/// version). When it is not, the upsert tries to insert a second document with the same _id and gets a
/// duplicate key: that is how a stale update shows.
Bson twin_guard(const core::Twin& t);

/// The telemetry document: _id "{car}:{seq}", top-level car/seq/ts(date)/location, the present signals,
/// flags when any, score when known, and `stored` (date): `stored_ms`, the writer's clock when its batch was
/// sent: an insert cannot take the server's clock as PostgreSQL's stored_ms does (pg_schema.cc), and an
/// upsert with $currentDate per document is what FerretDB is slowest at. A replay's duplicate keeps the
/// first write's time. `bench fleet` reads publish-to-stored latency from it.
Bson telemetry_doc(const TelemetryRow& r, const catalog::Catalog& catalog, int64_t stored_ms);
TelemetryRow read_telemetry(const bson_t* d, const catalog::Catalog& catalog);

/// The upsert of an alert: its fields by $set; acknowledged, once set, stays set (only ever $set to true; a
/// new alert starts false).
Bson alert_update(const core::Alert& a);
core::Alert read_alert(const bson_t* d);
/// An alert's newer-state guard, as SQLite's: later ts, or the same ts and a clear over a raise.
Bson alert_guard(const core::Alert& a);

Bson command_doc(const core::Command& c);
core::Command read_command(const bson_t* d);
/// A command's newer-state guard: the same status, or a stored status of lower rank.
Bson command_guard(const core::Command& c);

}  // namespace fleettwin::store::mongo
