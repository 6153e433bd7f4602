#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "catalog/catalog.h"
#include "store/filter.h"

struct sqlite3;

namespace fleettwin::store {

class Stmt;

/// A value bound to a `?N` placeholder of generated SQL. User text only ever reaches SQLite this way, never
/// as part of the SQL text.
using SqlParam = std::variant<int64_t, double, std::string>;

/// Builds the WHERE/ORDER BY parts of a twin listing from a Filter. Placeholders are numbered ?N in the
/// order of `params`, so the caller binds params[i] to ?(i+1). Used on the store's thread.
class TwinSql {
 public:
  /// SQL expression of the field: its twins column when it has one, otherwise ft_twin_field(rest, ?N)
  /// (see register_twin_field_function).
  std::string field(const FilterField& field);
  /// A boolean SQL expression equal to matches(filter, twin) for every stored twin (never NULL, so NOT
  /// and OR behave as in the reference evaluator even where a NaN number is stored as NULL).
  std::string filter(const Filter& filter);
  /// Placeholder for a new parameter.
  std::string param(SqlParam value);
  /// A value of a field, as the column stores it (bools as 0/1).
  std::string value(const FilterValue& value);

  const std::vector<SqlParam>& params() const { return _params; }
  /// Binds every parameter to `stmt`.
  void bind(Stmt& stmt) const;

 private:
  std::vector<SqlParam> _params;
};

/// Registers ft_twin_field(rest BLOB, path TEXT) on the connection: the value of a twin field kept in the
/// `rest` BLOB (a number, text, or 0/1; NULL for NaN), signals resolved with `catalog`, which must outlive
/// the connection. Deterministic, so SQLite may evaluate it once per row.
void register_twin_field_function(sqlite3* db, const catalog::Catalog* catalog);

}  // namespace fleettwin::store
