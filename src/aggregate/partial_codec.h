#pragma once

#include <string>
#include <string_view>

#include "aggregate/engine.h"

namespace fleettwin::aggregate {

/// A partial's record value on fleet.aggregates.partials: a version, then aggregate, group, source, event
/// time, window start, count and the window's state bytes (varints and length-prefixed strings, as the
/// changelog's state). Engine::combine() checks the window itself against the definitions.
std::string encode_partial(const Partial& p);
/// Reads what encode_partial() wrote. False, and the reason in `error` (may be null), on anything else:
/// records on the log are outside input (bounded lengths, no read past the end, no trailing bytes).
bool decode_partial(std::string_view bytes, Partial& p, std::string* error);
/// The record key of a partial, "<aggregate>|<group>|<window_start>|<source>": one per source's share of a
/// window, so the compacted topic keeps the latest of each.
std::string partial_key(const Partial& p);
/// The key the partials of one group are partitioned by, "<aggregate>|<group>": every source's partial of
/// a group reaches the copy that combines it.
std::string partial_group_key(std::string_view aggregate, std::string_view group);

}  // namespace fleettwin::aggregate
