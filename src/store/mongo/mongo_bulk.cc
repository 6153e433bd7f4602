#include "store/mongo/mongo_bulk.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>

namespace fleettwin::store::mongo {
namespace {

constexpr int64_t kDuplicateKey = 11000;

/// Sorts the reply's writeErrors into duplicates (into `out`) and other failures (appended to `failed`), as
/// indices into the ops given (`pending` maps the attempt's operation index to them). Returns whether the
/// reply had any writeErrors.
bool sort_write_errors(const bson_t* reply, const std::vector<size_t>& pending, BulkOutcome& out,
                       std::vector<size_t>& failed) {
  bool saw_write_errors = false;
  bson_iter_t it;
  bson_iter_t errs;
  if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
      !bson_iter_recurse(&it, &errs)) {
    return false;
  }
  while (bson_iter_next(&errs)) {
    saw_write_errors = true;
    bson_iter_t e;
    int64_t index = -1;
    int64_t code = 0;
    if (bson_iter_recurse(&errs, &e)) {
      while (bson_iter_next(&e)) {
        if (std::string_view(bson_iter_key(&e)) == "index") index = bson_iter_as_int64(&e);
        if (std::string_view(bson_iter_key(&e)) == "code") code = bson_iter_as_int64(&e);
      }
    }
    if (index < 0 || static_cast<size_t>(index) >= pending.size()) continue;
    if (code == kDuplicateKey) {
      out.duplicates.push_back(pending[static_cast<size_t>(index)]);
    } else {
      failed.push_back(pending[static_cast<size_t>(index)]);
    }
  }
  return saw_write_errors;
}

using UpsertOp = bool (*)(mongoc_bulk_operation_t*, const bson_t*, const bson_t*, const bson_t*,
                          bson_error_t*);

void add_upsert(mongoc_bulk_operation_t* bulk, UpsertOp op, const Bson& filter, const Bson& doc,
                const char* what) {
  Bson opts;
  opts.boolean("upsert", true);
  bson_error_t error;
  if (!op(bulk, filter.get(), doc.get(), opts.get(), &error)) throw MongoError(what, error);
}

}  // namespace

BulkOutcome run_bulk(mongoc_collection_t* coll, size_t count, const AddOp& add, const BulkPolicy& policy) {
  BulkOutcome out;
  std::vector<size_t> pending(count);
  for (size_t i = 0; i < count; ++i) pending[i] = i;
  int64_t backoff = policy.backoff_ms;
  Bson opts;
  opts.boolean("ordered", false);
  for (int attempt = 1; !pending.empty(); ++attempt) {
    BulkPtr bulk(mongoc_collection_create_bulk_operation_with_opts(coll, opts.get()));
    for (size_t i : pending) add(bulk.get(), i);
    bson_t reply;
    bson_error_t error;
    const bool ok = mongoc_bulk_operation_execute(bulk.get(), &reply, &error) != 0;
    out.inserted += get_int(&reply, "nInserted");
    out.matched += get_int(&reply, "nMatched");
    out.upserted += get_int(&reply, "nUpserted");
    std::vector<size_t> failed;
    const bool saw_write_errors = sort_write_errors(&reply, pending, out, failed);
    bson_destroy(&reply);
    if (ok) break;
    if (!saw_write_errors) {
      // No per-document verdict: nothing is known done, so everything goes again (the counts of this
      // attempt were zero or partial; a resent insert that had landed then counts as a duplicate).
      failed = pending;
    } else if (failed.empty()) {
      break;  // only duplicate keys: the expected outcome of a replay
    }
    if (attempt >= policy.max_attempts) {
      ++*policy.errors;
      if (policy.error_counter != nullptr) policy.error_counter->add();
      throw MongoError(std::string("bulk write to ") + mongoc_collection_get_name(coll) + " failed after " +
                           std::to_string(attempt) + " attempts",
                       error);
    }
    ++*policy.retries;
    if (policy.retry_counter != nullptr) policy.retry_counter->add();
    spdlog::warn("store.mongo: bulk write to {} failed ({}); retry {} in {} ms",
                 mongoc_collection_get_name(coll), error.message, attempt, backoff);
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
    backoff = std::min(backoff * 2, policy.backoff_max_ms);
    pending = std::move(failed);
  }
  return out;
}

void add_insert(mongoc_bulk_operation_t* bulk, const Bson& doc) {
  bson_error_t error;
  if (!mongoc_bulk_operation_insert_with_opts(bulk, doc.get(), nullptr, &error)) {
    throw MongoError("bulk insert", error);
  }
}

void add_upsert_replace(mongoc_bulk_operation_t* bulk, const Bson& filter, const Bson& doc) {
  add_upsert(bulk, mongoc_bulk_operation_replace_one_with_opts, filter, doc, "bulk replace");
}

void add_upsert_update(mongoc_bulk_operation_t* bulk, const Bson& filter, const Bson& update) {
  add_upsert(bulk, mongoc_bulk_operation_update_one_with_opts, filter, update, "bulk update");
}

}  // namespace fleettwin::store::mongo
