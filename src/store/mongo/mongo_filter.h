#pragma once

#include "store/filter.h"
#include "store/mongo/mongo_bson.h"

namespace fleettwin::store::mongo {

/// True for twin fields the adapter stores as BSON dates (times: reported.ts, health.since,
/// connection.first_seen/last_seen, metadata.*); a filter's number literal is compared with them as a date.
bool is_date_field(const FilterField& field);

/// The filter as a MongoDB query document. Values are always BSON values under a comparison operator
/// ({path: {$eq: value}}), never keys, so a literal such as "$where" or "'; DROP" stays a literal. NOT is
/// {$nor: [...]}, which, like matches(), is true for a stored null (NaN).
Bson filter_bson(const Filter& filter);

/// Appends `value` (for `field`, under `key`) as the twins collection stores it: dates for date fields.
void append_filter_value(bson_t* b, const char* key, const FilterField& field, const FilterValue& value);

}  // namespace fleettwin::store::mongo
