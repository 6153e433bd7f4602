#include "store/mongo/mongo_filter.h"

#include <cmath>

namespace fleettwin::store::mongo {
namespace {

const char* mongo_op(FilterOp op) {
  static constexpr const char* kOps[] = {"$eq", "$ne", "$lt", "$lte", "$gt", "$gte"};
  return kOps[static_cast<int>(op)];
}

void append_clause(bson_t* out, const Filter& f);

void append_list(bson_t* out, const char* op, const std::vector<Filter>& children) {
  bson_t arr;
  bson_append_array_begin(out, op, -1, &arr);
  for (size_t i = 0; i < children.size(); ++i) {
    const std::string key = std::to_string(i);
    bson_t child;
    bson_append_document_begin(&arr, key.c_str(), -1, &child);
    append_clause(&child, children[i]);
    bson_append_document_end(&arr, &child);
  }
  bson_append_array_end(out, &arr);
}

void append_clause(bson_t* out, const Filter& f) {
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
      bson_t cmp;
      bson_t empty;
      bson_append_document_begin(out, f.field.path.c_str(), -1, &cmp);
      bson_append_array_begin(&cmp, f.op == FilterOp::kEq ? "$in" : "$nin", -1, &empty);
      bson_append_array_end(&cmp, &empty);
      bson_append_document_end(out, &cmp);
      return;
    }
    value = (f.op == FilterOp::kGt || f.op == FilterOp::kLe) ? std::floor(d) : std::ceil(d);
  }
  bson_t cmp;
  bson_append_document_begin(out, f.field.path.c_str(), -1, &cmp);
  append_filter_value(&cmp, mongo_op(f.op), f.field, value);
  bson_append_document_end(out, &cmp);
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
  append_clause(out.get(), filter);
  return out;
}

}  // namespace fleettwin::store::mongo
