#pragma once

#include <string>
#include <vector>

#include "catalog/catalog.h"

namespace fleettwin::catalog {

/// One difference between two catalogs.
struct Change {
  enum class Kind : uint8_t {
    kAdded,
    kRemoved,
    kRenamed,
    kTypeChanged,
    kUnitChanged,
    kRangeChanged,
    kDescribed
  };
  Kind kind;
  std::string signal;  ///< the signal's name in the newer catalog (the older one's when removed)
  std::string detail;  ///< what changed, in words
  bool compatible;     ///< false when data written under the older catalog cannot be read under the newer
};
std::string_view to_string(Change::Kind k);

/// What moving from one catalog to another changes, and whether the move is BACKWARD compatible: readers on
/// the newer catalog read every record written under the older one. That is the schema registry's rule for
/// the generated Avro schema, so a compatible change can roll out car by car and stage by stage:
/// - a new signal is compatible (it is optional, null by default: older records simply lack it);
/// - a removed signal is compatible (newer readers skip it; the stores keep its history);
/// - a rename is compatible when the new signal lists the old name among its aliases;
/// - int to double is compatible (Avro promotes it); any other type change is not;
/// - a unit change is not: the same name would mean two different quantities in one history;
/// - range, part, description and alias changes are compatible and listed.
struct Compatibility {
  std::vector<Change> changes;
  bool compatible() const;
  /// One line per change and a verdict, as `fleettwin catalog check --against` prints it.
  std::string report() const;
};

Compatibility compare(const Catalog& older, const Catalog& newer);

}  // namespace fleettwin::catalog
