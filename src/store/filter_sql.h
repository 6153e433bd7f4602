#pragma once

// What the SQL stores (sqlite/, postgres/) share of translating the filter language (filter.h) to SQL: the
// boolean structure, the operators and the NaN rule. Each store writes its own fields and parameters.

#include <functional>
#include <string>
#include <string_view>

#include "store/filter.h"

namespace fleettwin::store {

/// The SQL operator of a comparison: = <> < <= > >=.
std::string_view sql_op(FilterOp op);

/// The SQL text of `filter`: NOT, AND and OR written here, each comparison (Kind::kCompare) by `compare`, in
/// the order of the filter's text (so parameters are numbered in that order).
std::string filter_sql(const Filter& filter, const std::function<std::string(const Filter&)>& compare);

/// A comparison `cmp` of the number expression `x`, where a NaN number is stored as NULL: as in matches(), it
/// satisfies != and nothing else, and the result is never NULL itself (so NOT and OR behave).
std::string nan_guarded(FilterOp op, const std::string& x, const std::string& cmp);

}  // namespace fleettwin::store
