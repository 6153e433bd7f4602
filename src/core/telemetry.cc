#include "core/telemetry.h"

#include <algorithm>
#include <bit>

namespace fleettwin::core {

namespace {

// Bitwise equality, so that absent (NaN) equals absent; every NaN the platform writes is kAbsent.
bool same_value(double a, double b) { return a == b || (absent(a) && absent(b)); }

}  // namespace

bool Telemetry::flagged(std::size_t signal) const {
  return std::binary_search(out_of_range.begin(), out_of_range.end(), static_cast<uint16_t>(signal));
}

bool Telemetry::operator==(const Telemetry& o) const {
  return car == o.car && ts == o.ts && seq == o.seq && same_value(lat, o.lat) && same_value(lon, o.lon) &&
         std::ranges::equal(values, o.values, same_value) && out_of_range == o.out_of_range;
}

}  // namespace fleettwin::core
