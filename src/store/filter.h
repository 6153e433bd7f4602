#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "catalog/catalog.h"
#include "core/twin.h"

namespace fleettwin::store {

/// A filter text the parser refuses. `position` is the 0-based byte offset in the text where the problem
/// starts; what() names it ("filter: at position 12: ..."), so an API or CLI user sees where to look.
struct FilterError : std::runtime_error {
  FilterError(size_t position, const std::string& message);
  size_t position;
};

/// The type of a twin field a filter may name. Comparisons are type-checked at parse time so every backend
/// sees only well-typed comparisons (SQLite would otherwise compare 'abc' > 3 by its own affinity rules).
enum class FilterType : uint8_t { kNumber, kString, kBool };

/// One field of the twin document (DESIGN.md §4 Twin) a filter or a sort may name.
struct FilterField {
  /// Canonical dotted path in the MongoDB twin document, e.g. "_id", "reported.speed"; a signal's path uses
  /// its catalog field (identifier form): "reported.Vehicle_Speed", "metadata.Vehicle_Speed".
  std::string path;
  FilterType type = FilterType::kNumber;
  /// For reported.<signal> and metadata.<signal>: the signal's index in the catalog the field was resolved
  /// with (what twin_field_value reads); kNoSignal otherwise.
  std::size_t signal = kNoSignal;
  static constexpr std::size_t kNoSignal = static_cast<std::size_t>(-1);
  bool operator==(const FilterField&) const = default;
};

/// The field called `path` (accepts "id" as an alias of "_id"), or nullopt for an unknown one. A signal may
/// be named by any of its catalog names after "reported." or "metadata." (name, field or alias:
/// "reported.Vehicle.Speed", "reported.Vehicle_Speed" and "reported.speed" are one field in a VSS catalog).
std::optional<FilterField> find_filter_field(std::string_view path,
                                             const catalog::Catalog& catalog = *catalog::builtin());
/// Every field a filter may name, signals in catalog order (for help texts and error messages).
std::vector<FilterField> filter_fields(const catalog::Catalog& catalog = *catalog::builtin());

enum class FilterOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };
std::string_view to_string(FilterOp op);

/// A literal of a comparison. Numbers are doubles: every numeric twin field is read as a double.
using FilterValue = std::variant<double, std::string, bool>;

/// The parsed filter: a small AST. Plain value; any thread.
///   kCompare: `field op value`; kAnd / kOr: every / any of `children` (two or more); kNot: children[0].
struct Filter {
  enum class Kind : uint8_t { kCompare, kAnd, kOr, kNot };
  Kind kind = Kind::kCompare;
  FilterField field;
  FilterOp op = FilterOp::kEq;
  FilterValue value;
  std::vector<Filter> children;
  bool operator==(const Filter&) const = default;
};

/// Filters come from outside (the API's ?filter=): the parser and every translation of the tree recurse once
/// per nesting level, so the text and its nesting are bounded before anything else looks at them. Both are
/// far above what a person writes (the dashboard's filters nest two or three levels).
inline constexpr std::size_t kMaxFilterLength = 4096;  ///< bytes of filter text
inline constexpr int kMaxFilterDepth = 32;             ///< nested '(' and '!' at most

/// Parses e.g. `health.status == "anomaly" && reported.speed > 30`. Grammar (precedence low to high):
///   or := and ('||' and)* ; and := unary ('&&' unary)* ; unary := '!' unary | '(' or ')' | cmp
///   cmp := field op literal ; op := == != < <= > >= ; literal := number | "string" | true | false
/// Strings are double-quoted with \" and \\ escapes. Throws FilterError naming the position of an unknown
/// field, a type mismatch (e.g. `connection.online > 3`), a bad literal, or a syntax error. Signal fields
/// are resolved with `catalog` (the store's: a Filter is for stores of that catalog). A text longer than
/// kMaxFilterLength or nested deeper than kMaxFilterDepth is refused with a FilterError too.
Filter parse_filter(std::string_view text, const catalog::Catalog& catalog = *catalog::builtin());

/// The filter as text that parse_filter() reads back to an equal Filter (for logs and tests).
std::string to_string(const Filter& filter);

/// The value of `field` in `twin` (for sorting and paging cursors): a double, string or bool. A signal the
/// twin does not hold (a value vector shorter than the field's index) reads as absent (NaN).
FilterValue twin_field_value(const core::Twin& twin, const FilterField& field);

/// Evaluates the filter against a twin in memory: the reference semantics both adapters' translations
/// must agree with (the contract tests compare them). A NaN number matches no comparison but `!=`.
bool matches(const Filter& filter, const core::Twin& twin);

/// A parsed TwinQuery::sort: the field and its direction. Empty text sorts by id ascending.
struct TwinSort {
  FilterField field{"_id", FilterType::kString};
  bool descending = false;
  bool by_id() const { return field.path == "_id"; }
};
/// Parses "reported.speed" / "-health.score" / "" (id), signals resolved with `catalog`. Throws FilterError
/// for an unknown field.
TwinSort parse_sort(std::string_view text, const catalog::Catalog& catalog = *catalog::builtin());

/// The paging cursor of a sorted listing: where the next page starts after `last`. Ordering is (sort
/// field, then id ascending) in both adapters, so (value, id) identifies a position exactly. For the id
/// sort the cursor is the id itself; otherwise an opaque hex string. Pass it back as TwinQuery::after_id.
std::string twin_cursor(const TwinSort& sort, const core::Twin& last);
/// The decoded cursor: the last sort value and id. Throws FilterError(0, ...) on a malformed cursor.
struct TwinCursor {
  FilterValue value;
  std::string id;
};
TwinCursor decode_twin_cursor(const TwinSort& sort, std::string_view cursor);

}  // namespace fleettwin::store
