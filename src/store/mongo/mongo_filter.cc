#include "store/mongo/mongo_filter.h"

#include <cmath>

namespace fleettwin::store::mongo {
namespace {

const char* mongo_op(FilterOp op) {
  static constexpr const char* kOps[] = {"$eq", "$ne", "$lt", "$lte", "$gt", "$gte"};
  return kOps[static_cast<int>(op)];
}

void append_clause(DocWriter& out, const Filter& f);

void append_list(DocWriter& out, const char* op, const std::vector<Filter>& children) {
  out.array(op, [&](ArrayWriter& arr) {
    for (const auto& child : children) arr.child([&](DocWriter& c) { append_clause(c, child); });
  });
}

void append_clause(DocWriter& out, const Filter& f) {
  switch (f.kind) {
    case Filter::Kind::kAnd:
      append_list(out, "$and", f.children);
      return;
    case Filter::Kind::kOr:
      append_list(out, "$or", f.children);
      return;
    case Filter::Kind::kNot:
      append_list(out, "$nor", f.children);
      return;
    case Filter::Kind::kCompare:
      break;
  }
  FilterValue value = f.value;
  if (is_date_field(f.field) && std::get<double>(value) != std::floor(std::get<double>(value))) {
    // Dates are whole milliseconds: round a fractional literal so the date comparison selects the same
    // values as the numeric one (ts > 1.5 is ts > 1; ts < 1.5 is ts < 2). No date equals it, and every
    // one differs from it: `{path: {$in: []}}` matches nothing, `{path: {$nin: []}}` everything.
    const double d = std::get<double>(value);
    if (f.op == FilterOp::kEq || f.op == FilterOp::kNe) {
      out.child(f.field.path, [&](DocWriter& cmp) {
        cmp.array(f.op == FilterOp::kEq ? "$in" : "$nin", [](ArrayWriter&) {});
      });
      return;
    }
    value = (f.op == FilterOp::kGt || f.op == FilterOp::kLe) ? std::floor(d) : std::ceil(d);
  }
  out.child(f.field.path,
            [&](DocWriter& cmp) { append_filter_value(cmp.get(), mongo_op(f.op), f.field, value); });
}

}  // namespace

bool is_date_field(const FilterField& field) {
  const std::string& p = field.path;
  return p == "reported.ts" || p == "health.since" || p == "connection.first_seen" ||
         p == "connection.last_seen" || p.starts_with("metadata.");
}

void append_filter_value(bson_t* b, const char* key, const FilterField& field, const FilterValue& value) {
  if (const double* d = std::get_if<double>(&value)) {
    if (is_date_field(field)) {
      append_date(b, key, static_cast<int64_t>(*d));
    } else {
      append_num(b, key, *d);
    }
  } else if (const bool* v = std::get_if<bool>(&value)) {
    append_bool(b, key, *v);
  } else {
    append_str(b, key, std::get<std::string>(value));
  }
}

Bson filter_bson(const Filter& filter) {
  Bson out;
  append_clause(out, filter);
  return out;
}

}  // namespace fleettwin::store::mongo
