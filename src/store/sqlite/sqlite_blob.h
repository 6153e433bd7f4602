#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/twin.h"

namespace fleettwin::store {

/// The store keeps the twin fields it filters and sorts on as columns and the rest in one BLOB. The
/// encoding is private to sqlite/ (so the store does not depend on the codec module): a format byte, then
/// fixed 8-byte little-endian numbers and varint-length-prefixed strings, in a fixed field order. A decoder
/// refuses a blob it cannot read fully instead of returning a half-filled twin.

/// Encodes every Twin field that has no column of its own (see sqlite_store.cc: twins table).
std::string encode_twin_rest(const core::Twin& twin);
/// Fills those fields of `twin` from `blob`. Throws std::runtime_error on a malformed blob.
void decode_twin_rest(std::string_view blob, core::Twin& twin);

/// A list of strings (alert signals).
std::string encode_strings(const std::vector<std::string>& list);
std::vector<std::string> decode_strings(std::string_view blob);

}  // namespace fleettwin::store
