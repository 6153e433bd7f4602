#pragma once

// The rows of the `aggregates` table / collection: what the aggregate stage's results become in the store
// (written by the sink, h/aggflow) and what the API, the CLI and the history fallback read back. Plain
// data shared by every adapter and their callers; no thread of its own.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fleettwin::store {

/// One window result of one aggregate and group. Key (aggregate, group, window_start_ms); a later revision
/// of the same key (late events changed it) replaces the stored one, an equal or lower one is ignored.
struct AggregateRow {
  std::string aggregate{}, group{};                ///< group: car id, "fleet", or the attribute value
  int64_t window_start_ms = 0, window_end_ms = 0;  ///< end exclusive
  uint32_t revision = 1;
  bool final = false;
  int64_t count = 0;
  /// Column name (the definition's "<signal>_<function>", e.g. "speed_mean") -> value, NaN = none.
  std::vector<std::pair<std::string, double>> values{};
  bool operator==(const AggregateRow&) const = default;
};

/// Which stored windows TwinStore::aggregates returns: those of `aggregate` (and of `group`, when not
/// empty) with from_ms <= window_start_ms < to_ms, at most `limit`, ordered by group then window start.
/// Every member has a default (`{}`), so `{.aggregate = "x"}` names only what it sets.
struct AggregateQuery {
  std::string aggregate{};
  std::string group{};  ///< empty: every group
  int64_t from_ms = INT64_MIN, to_ms = INT64_MAX;
  std::size_t limit = 10000;
};

}  // namespace fleettwin::store
