#pragma once

// What the SQL stores (sqlite/, postgres/) share of translating the filter language (filter.h) to SQL: the
// boolean structure, the operators and the NaN rule. Each store writes its own fields and parameters.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "store/filter.h"
#include "store/twin_store.h"

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

/// The SELECT of a twin listing (`q`, its sort parsed as `sort`) in both SQL stores: `columns` of the twins
/// that match the query's status, online, filter and paging cursor, ordered by the sort field (NULL, a NaN
/// number or a field the twin lacks, as the lowest value) then id, at most q.limit of them. `Sql` is the
/// store's builder (TwinSql, PgTwinSql): it writes fields, filters and values, every value a parameter.
template <typename Sql>
std::string twin_list_sql(Sql& sql, const TwinQuery& q, const TwinSort& sort, std::string_view columns) {
  std::string where;
  auto add = [&where](const std::string& condition) {
    where += where.empty() ? " WHERE " : " AND ";
    where += condition;
  };
  if (q.status) add("status = " + sql.value(FilterValue(std::string(core::to_string(*q.status)))));
  if (q.online) add("online = " + sql.value(FilterValue(*q.online)));
  if (q.filter) add(sql.filter(*q.filter));
  std::string order = "id";
  if (sort.by_id()) {
    if (!q.after_id.empty()) add("id > " + sql.param(q.after_id));
  } else {
    const std::string key = sql.field(sort.field);
    order = key + (sort.descending ? " DESC NULLS LAST, id" : " ASC NULLS FIRST, id");
    if (!q.after_id.empty()) {
      const TwinCursor c = decode_twin_cursor(sort, q.after_id);
      const std::string v = sql.value(c.value);
      add("(" + key + (sort.descending ? " < " : " > ") + v + " OR (" + key + " = " + v + " AND id > " +
          sql.param(c.id) + "))");
    }
  }
  return "SELECT " + std::string(columns) + " FROM twins" + where + " ORDER BY " + order + " LIMIT " +
         sql.param(q.limit);
}

}  // namespace fleettwin::store
