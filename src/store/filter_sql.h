#pragma once

// What the SQL stores (sqlite/, postgres/) share of translating the filter language (filter.h) to SQL: the
// boolean structure, the operators and the NaN rule. Each store writes its own fields and parameters.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "store/filter.h"

namespace fleettwin::store {

/// The twin field paths that are columns of both SQL stores' twins table (sqlite_schema.cc, pg_schema.cc) and
/// the column of each; empty for a field the store keeps inside its document (`rest`, `fields`).
std::string_view twin_column(std::string_view path);

/// The telemetry column hourly() aggregates for `signal`: "score", or the column of a catalog signal named by
/// any of its names (`columns` indexed like `catalog`'s signals). The name comes from the catalog, never from
/// the caller's text; std::invalid_argument for an unknown signal.
std::string signal_column(const catalog::Catalog& catalog, const std::vector<std::string>& columns,
                          std::string_view signal);

/// The SQL operator of a comparison: = <> < <= > >=.
std::string_view sql_op(FilterOp op);

/// The SQL text of `filter`: NOT, AND and OR written here, each comparison (Kind::kCompare) by `compare`, in
/// the order of the filter's text (so parameters are numbered in that order).
std::string filter_sql(const Filter& filter, const std::function<std::string(const Filter&)>& compare);

/// A comparison `cmp` of the number expression `x`, where a NaN number is stored as NULL: as in matches(), it
/// satisfies != and nothing else, and the result is never NULL itself (so NOT and OR behave).
std::string nan_guarded(FilterOp op, const std::string& x, const std::string& cmp);

}  // namespace fleettwin::store
