#include "store/sqlite/sqlite_filter.h"

#include <sqlite3.h>

#include <cmath>
#include <exception>
#include <string_view>

#include "store/filter_sql.h"
#include "store/sqlite/sqlite_db.h"
#include "store/twin_blob.h"

namespace fleettwin::store {
namespace {

void twin_field_function(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  try {
    const void* blob = sqlite3_value_blob(argv[0]);
    std::string_view rest(static_cast<const char*>(blob), static_cast<size_t>(sqlite3_value_bytes(argv[0])));
    std::string_view path(reinterpret_cast<const char*>(sqlite3_value_text(argv[1])),
                          static_cast<size_t>(sqlite3_value_bytes(argv[1])));
    const auto& catalog = *static_cast<const catalog::Catalog*>(sqlite3_user_data(ctx));
    auto field = find_filter_field(path, catalog);
    if (!field) {
      sqlite3_result_error(ctx, "ft_twin_field: unknown field", -1);
      return;
    }
    core::Twin twin;
    decode_twin_rest(rest, twin, catalog);
    FilterValue v = twin_field_value(twin, *field);
    if (const double* d = std::get_if<double>(&v)) {
      if (std::isnan(*d)) {
        sqlite3_result_null(ctx);
      } else {
        sqlite3_result_double(ctx, *d);
      }
    } else if (const bool* b = std::get_if<bool>(&v)) {
      sqlite3_result_int(ctx, *b ? 1 : 0);
    } else {
      const std::string& s = std::get<std::string>(v);
      sqlite3_result_text(ctx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
  } catch (const std::exception& e) {
    sqlite3_result_error(ctx, e.what(), -1);
  }
}

}  // namespace

std::string TwinSql::param(SqlParam value) {
  _params.push_back(std::move(value));
  return "?" + std::to_string(_params.size());
}

std::string TwinSql::value(const FilterValue& v) {
  if (const double* d = std::get_if<double>(&v)) return param(*d);
  if (const bool* b = std::get_if<bool>(&v)) return param(int64_t{*b ? 1 : 0});
  return param(std::get<std::string>(v));
}

std::string TwinSql::field(const FilterField& f) {
  if (const auto column = twin_column(f.path); !column.empty()) return std::string(column);
  return "ft_twin_field(rest, " + param(f.path) + ")";
}

std::string TwinSql::filter(const Filter& f) {
  return filter_sql(f, [this](const Filter& c) {
    const std::string x = field(c.field);
    const std::string cmp = x + " " + std::string(sql_op(c.op)) + " " + value(c.value);
    if (c.field.type != FilterType::kNumber) return "(" + cmp + ")";
    return nan_guarded(c.op, x, cmp);
  });
}

void TwinSql::bind(Stmt& stmt) const {
  for (size_t i = 0; i < _params.size(); ++i) {
    const int n = static_cast<int>(i + 1);
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            stmt.bind(n, std::string_view(v));
          } else {
            stmt.bind(n, v);
          }
        },
        _params[i]);
  }
}

void register_twin_field_function(sqlite3* db, const catalog::Catalog* catalog) {
  // SQLite hands the pointer back through sqlite3_user_data and never writes through it.
  void* user = const_cast<catalog::Catalog*>(catalog);  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  int rc = sqlite3_create_function_v2(db, "ft_twin_field", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, user,
                                      &twin_field_function, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) throw_sqlite(db, rc, "registering ft_twin_field");
}

}  // namespace fleettwin::store
