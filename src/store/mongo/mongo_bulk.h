#pragma once

// Bulk writes of the mongo adapter: unordered bulk operations resent until every operation is applied or
// refused as a duplicate key, with a bounded backoff.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/metrics.h"
#include "store/mongo/mongo_bson.h"

namespace fleettwin::store::mongo {

/// What one bulk write did, from the server's reply.
struct BulkOutcome {
  int64_t inserted = 0;
  int64_t matched = 0;
  int64_t upserted = 0;
  std::vector<size_t> duplicates;  ///< indices (into the ops given) refused with E11000
};

/// How a bulk write retries and where it counts its retries and failures: the store's tuning and counters
/// (the metric counters optional). Used on the store's thread.
struct BulkPolicy {
  int max_attempts = 8;
  int64_t backoff_ms = 100;
  int64_t backoff_max_ms = 5000;
  int64_t* retries = nullptr;  ///< the store's own counts; required
  int64_t* errors = nullptr;
  core::Counter* retry_counter = nullptr;
  core::Counter* error_counter = nullptr;
};

/// Adds operation `i` (of those given to run_bulk) to a bulk operation.
using AddOp = std::function<void(mongoc_bulk_operation_t*, size_t)>;

/// Runs `count` operations (added by `add(bulk, i)`) as unordered bulk writes until none fails for a reason
/// other than a duplicate key. Unordered: one bad document does not stop the others, and on a single server
/// the operations still run in the order given. A failure without per-document errors (server down, network,
/// write concern) resends every operation not yet known done; each resend waits longer (bounded) and counts
/// as a retry; after max_attempts it throws. Idempotent ids make a resend of something already applied a
/// duplicate, never a second copy.
BulkOutcome run_bulk(mongoc_collection_t* coll, size_t count, const AddOp& add, const BulkPolicy& policy);

void add_insert(mongoc_bulk_operation_t* bulk, const Bson& doc);
void add_upsert_replace(mongoc_bulk_operation_t* bulk, const Bson& filter, const Bson& doc);
void add_upsert_update(mongoc_bulk_operation_t* bulk, const Bson& filter, const Bson& update);

}  // namespace fleettwin::store::mongo
