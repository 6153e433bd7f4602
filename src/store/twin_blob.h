#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "core/twin.h"

namespace fleettwin::store {

/// The SQL stores (sqlite/, postgres/) keep the twin fields they filter and sort on as columns and the rest
/// in one BLOB. The encoding is private to the stores (so they do not depend on the codec module): a format
/// byte, then fixed 8-byte little-endian numbers and varint-length-prefixed strings, in a fixed field order.
/// A decoder refuses a blob it cannot read fully instead of returning a half-filled twin.
///
/// Signals are stored by their catalog field name (format 2), each with its value, metadata time and
/// out-of-range flag, and only those the twin holds anything for: a blob written under one catalog reads
/// under another (a signal the reader's catalog lacks is skipped, one the blob lacks reads absent).

/// Encodes every Twin field that has no column of its own (see sqlite_schema.cc: twins table); signal i of
/// the twin is catalog[i].
std::string encode_twin_rest(const core::Twin& twin, const catalog::Catalog& catalog);
/// Fills those fields of `twin` from `blob`, its signals sized and ordered by `catalog`. Reads format 1
/// (the 18 cardata-v1 signals by position, before the catalog) too. Throws std::runtime_error on a
/// malformed blob.
void decode_twin_rest(std::string_view blob, core::Twin& twin, const catalog::Catalog& catalog);

/// A list of strings (alert signals).
std::string encode_strings(const std::vector<std::string>& list);
std::vector<std::string> decode_strings(std::string_view blob);

/// The values of a window aggregate (AggregateRow::values: column name -> value, NaN = none), as the SQL
/// stores keep them in one BLOB: a format byte, a varint count, then each name and its 8-byte double.
std::string encode_aggregate_values(const std::vector<std::pair<std::string, double>>& values);
/// Throws std::runtime_error on a malformed blob.
std::vector<std::pair<std::string, double>> decode_aggregate_values(std::string_view blob);

/// The `flags` column of a telemetry row: the flagged signals' fields, comma-separated ("" when none: stored
/// as NULL).
std::string flags_text(const core::Telemetry& t, const catalog::Catalog& catalog);
/// Reads a `flags` column back into t.out_of_range (ascending); fields the catalog lacks are skipped.
void read_flags(std::string_view text, const catalog::Catalog& catalog, core::Telemetry& t);

}  // namespace fleettwin::store
