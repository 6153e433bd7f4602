#include "store/filter_sql.h"

#include <array>

namespace fleettwin::store {

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
