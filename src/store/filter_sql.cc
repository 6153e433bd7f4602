#include "store/filter_sql.h"

#include <array>
#include <stdexcept>

namespace fleettwin::store {

namespace {
struct ColumnField {
  std::string_view path;
  std::string_view column;
};
constexpr std::array<ColumnField, 8> kTwinColumns{{
    {"_id", "id"},
    {"version", "version"},
    {"reported.seq", "seq"},
    {"reported.ts", "ts"},
    {"health.status", "status"},
    {"connection.online", "online"},
    {"health.score", "score"},
    {"connection.last_seen", "last_seen"},
}};
}  // namespace

std::string signal_column(const catalog::Catalog& catalog, const std::vector<std::string>& columns,
                          std::string_view signal) {
  if (signal == "score") return "score";
  if (auto i = catalog.find(signal)) return columns.at(*i);
  throw std::invalid_argument("hourly: unknown signal '" + std::string(signal) + "'");
}

std::string_view twin_column(std::string_view path) {
  for (const auto& c : kTwinColumns) {
    if (c.path == path) return c.column;
  }
  return {};
}

std::string_view sql_op(FilterOp op) {
  static constexpr std::array<std::string_view, 6> kOps{"=", "<>", "<", "<=", ">", ">="};
  return kOps[static_cast<std::size_t>(op)];
}

std::string filter_sql(const Filter& f, const std::function<std::string(const Filter&)>& compare) {
  switch (f.kind) {
    case Filter::Kind::kNot:
      return "NOT (" + filter_sql(f.children[0], compare) + ")";
    case Filter::Kind::kAnd:
    case Filter::Kind::kOr: {
      std::string out = "(";
      for (size_t i = 0; i < f.children.size(); ++i) {
        if (i > 0) out += f.kind == Filter::Kind::kAnd ? " AND " : " OR ";
        out += filter_sql(f.children[i], compare);
      }
      return out + ")";
    }
    case Filter::Kind::kCompare:
      break;
  }
  return compare(f);
}

std::string nan_guarded(FilterOp op, const std::string& x, const std::string& cmp) {
  if (op == FilterOp::kNe) return "(" + x + " IS NULL OR " + cmp + ")";
  return "(" + x + " IS NOT NULL AND " + cmp + ")";
}

}  // namespace fleettwin::store
