// The write path of MongoStore (one batch: telemetry, twins, alerts, commands) and alert acknowledgement.
// Reads are in mongo_queries.cc and mongo_analytics.cc, connection and indexes in mongo_connection.cc.
#include "store/mongo/mongo_store.h"

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "store/mongo/mongo_bson.h"
#include "store/mongo/mongo_bulk.h"
#include "store/mongo/mongo_cursor.h"
#include "store/mongo/mongo_documents.h"
#include "store/mongo/mongo_store_impl.h"
#include "store/mongo/mongo_twin_lease.h"

namespace fleettwin::store {
namespace {

using namespace mongo;  // NOLINT: the adapter's own helpers

/// The bulk writes of one batch: how they retry, and whether the server's conditional updates are atomic.
/// On the store's thread, for one write() call.
struct BatchWriter {
  BulkPolicy policy;
  bool atomic_updates;

  BulkOutcome bulk(mongoc_collection_t* coll, size_t n, const AddOp& add) const {
    return run_bulk(coll, n, add, policy);
  }

  /// Conditional updates, one per request where an unordered update batch stops at its first write error
  /// (FerretDB 1.x: docs/operations.md, "FerretDB 1.x and the MongoDB adapter"). Alerts and commands are
  /// few per batch, so the extra round trips are cheap.
  BulkOutcome guarded(mongoc_collection_t* coll, size_t n, const AddOp& add) const {
    if (atomic_updates) return bulk(coll, n, add);
    BulkOutcome all;
    for (size_t i = 0; i < n; ++i) {
      BulkOutcome one = bulk(coll, 1, [&](mongoc_bulk_operation_t* b, size_t) { add(b, i); });
      all.matched += one.matched;
      all.upserted += one.upserted;
      if (!one.duplicates.empty()) all.duplicates.push_back(i);
    }
    return all;
  }
};

/// The conditional upserts of one kind of a batch: per element its guard and its document, or its update
/// ($-operators, by update_one) when `update`; a whole document goes by replace_one.
struct Upserts {
  std::vector<Bson> filters;
  std::vector<Bson> docs;
  bool update = false;

  template <typename T, typename Guard, typename Doc>
  static Upserts of(const std::vector<T>& items, Guard&& guard, Doc&& doc, bool update = false) {
    Upserts u{{}, {}, update};
    u.filters.reserve(items.size());
    u.docs.reserve(items.size());
    for (const auto& item : items) {
      u.filters.push_back(guard(item));
      u.docs.push_back(doc(item));
    }
    return u;
  }
  size_t size() const { return filters.size(); }
  void add(mongoc_bulk_operation_t* bulk, size_t i) const {
    if (update) {
      add_upsert_update(bulk, filters[i], docs[i]);
    } else {
      add_upsert_replace(bulk, filters[i], docs[i]);
    }
  }
};

void write_telemetry(const BatchWriter& w, mongoc_collection_t* coll, const std::vector<TelemetryRow>& rows,
                     const catalog::Catalog& catalog, WriteResult& result) {
  std::vector<Bson> docs;
  docs.reserve(rows.size());
  // The writer's clock, not the server's: an insert has no server-side time (telemetry_doc).
  const int64_t stored_ms = core::wall_clock_ms();
  for (const auto& r : rows) docs.push_back(telemetry_doc(r, catalog, stored_ms));
  const BulkOutcome o =
      w.bulk(coll, docs.size(), [&](mongoc_bulk_operation_t* b, size_t i) { add_insert(b, docs[i]); });
  result.telemetry_inserted = o.inserted;
  result.telemetry_duplicates = static_cast<int64_t>(o.duplicates.size());
}

/// Twins by conditional upsert (twin_guard) where the server applies the guard atomically; returns how many
/// applied.
int64_t upsert_twins_guarded(const BatchWriter& w, mongoc_collection_t* coll,
                             const std::vector<core::Twin>& twins, const catalog::Catalog& catalog) {
  const Upserts upserts =
      Upserts::of(twins, twin_guard, [&](const core::Twin& t) { return twin_doc(t, catalog); });
  auto add = [&](const std::vector<size_t>& ops) {
    return [&, ops](mongoc_bulk_operation_t* b, size_t i) { upserts.add(b, ops[i]); };
  };
  std::vector<size_t> all(twins.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const BulkOutcome o = w.bulk(coll, all.size(), add(all));
  int64_t applied = o.matched + o.upserted;
  if (!o.duplicates.empty()) {
    // A duplicate key is a stale update, or the loser of two first inserts racing: the document exists
    // now, so one more conditional upsert decides (applies if newer, duplicate key again if stale).
    const BulkOutcome again = w.bulk(coll, o.duplicates.size(), add(o.duplicates));
    applied += again.matched + again.upserted;
  }
  return applied;
}

/// Twins under per-car lease locks, where the server's conditional update is not atomic: the states the
/// leases decided on are replaced by _id, which never fails with a duplicate key. Returns how many applied.
int64_t upsert_twins_leased(const BatchWriter& w, TwinLeases& leases, mongoc_collection_t* coll,
                            const std::vector<core::Twin>& twins, const catalog::Catalog& catalog) {
  std::vector<Bson> docs;
  docs.reserve(twins.size());
  for (const auto& t : twins) docs.push_back(twin_doc(t, catalog));
  // One attempt under the lock: a failure releases the locks and throws; the caller's retry of the whole
  // write then locks again.
  BulkPolicy once = w.policy;
  once.max_attempts = 1;
  return leases.upsert(twins, [&](const std::vector<size_t>& which) {
    run_bulk(
        coll, which.size(),
        [&](mongoc_bulk_operation_t* b, size_t i) {
          add_upsert_replace(b, id_filter(twins[which[i]].id), docs[which[i]]);
        },
        once);
  });
}

/// Alerts and commands: few per batch, each by a conditional upsert (see BatchWriter::guarded). Returns the
/// indices of those refused as older than the stored state.
std::vector<size_t> write_guarded(const BatchWriter& w, mongoc_collection_t* coll, const Upserts& upserts) {
  return w.guarded(coll, upserts.size(), [&](mongoc_bulk_operation_t* b, size_t i) { upserts.add(b, i); })
      .duplicates;
}

/// Updates one alert by id; whether it exists. `what` names the operation in the error.
bool update_alert(mongoc_collection_t* alerts, const std::string& id, const Bson& update, const char* what) {
  bson_t reply;
  bson_error_t error;
  const bool ok =
      mongoc_collection_update_one(alerts, id_filter(id).get(), update.get(), nullptr, &reply, &error);
  const int64_t matched = get_int(&reply, "matchedCount");
  bson_destroy(&reply);
  if (!ok) throw MongoError(what, error);
  return matched > 0;
}

}  // namespace

WriteResult MongoStore::write(const WriteBatch& batch) {
  WriteResult result;
  BatchWriter w{BulkPolicy{_options.max_attempts, _options.retry_backoff_ms, _options.retry_backoff_max_ms,
                           &_retries, &_errors},
                _pool->capabilities().atomic_updates};
  if (_options.metrics != nullptr) {
    w.policy.retry_counter = &_options.metrics->counter("fleettwin_store_mongo_retries_total",
                                                        "MongoDB bulk writes resent after a failure");
    w.policy.error_counter = &_options.metrics->counter("fleettwin_store_mongo_errors_total",
                                                        "MongoDB bulk writes given up after max attempts");
  }
  if (!batch.telemetry.empty()) {
    write_telemetry(w, _impl->telemetry.get(), batch.telemetry, *_catalog, result);
    for (const TelemetryRow& row : batch.telemetry) _retention_floor = std::min(_retention_floor, row.t.ts);
  }
  if (!batch.twins.empty()) {
    int64_t applied = 0;
    if (w.atomic_updates) {
      applied = upsert_twins_guarded(w, _impl->twins.get(), batch.twins, *_catalog);
    } else {
      // The lease inserts retry with the store's options but count only in retries()/errors().
      const BulkPolicy lock_policy{_options.max_attempts, _options.retry_backoff_ms,
                                   _options.retry_backoff_max_ms, &_retries, &_errors};
      TwinLeases leases(_client, _pool->database(), _impl->twins.get(), _owner, lock_policy);
      applied = upsert_twins_leased(w, leases, _impl->twins.get(), batch.twins, *_catalog);
    }
    result.twins_applied = applied;
    result.twins_stale = static_cast<int64_t>(batch.twins.size()) - applied;
  }
  if (!batch.alerts.empty()) {
    const Upserts alerts = Upserts::of(batch.alerts, alert_guard, alert_update, true);
    for (size_t i : write_guarded(w, _impl->alerts.get(), alerts)) {
      // An older state was refused; its acknowledgement still counts.
      if (batch.alerts[i].acknowledged) ack_alert(batch.alerts[i].id);
    }
  }
  if (!batch.commands.empty()) {
    write_guarded(w, _impl->commands.get(), Upserts::of(batch.commands, command_guard, command_doc));
  }
  return result;
}

bool MongoStore::ack_alert(const std::string& id) {
  const Bson update = set_update([](DocWriter& set) { set.boolean("acknowledged", true); });
  return update_alert(_impl->alerts.get(), id, update, "ack_alert");
}

bool MongoStore::set_alert_feedback(const std::string& id, const std::string& label, const std::string& note,
                                    int64_t ts) {
  // Fields of their own, which alert_update never sets: the sink's later upserts of the alert keep them.
  const Bson update = set_update([&](DocWriter& set) {
    set.str("feedback", label).str("feedback_note", note).int64("feedback_ts", ts);
  });
  return update_alert(_impl->alerts.get(), id, update, "set_alert_feedback");
}

core::FeedbackCounts MongoStore::feedback_counts(const std::string& model_version) {
  const auto labelled = [&](const char* label) {
    Bson f;
    f.str("model_version", model_version).str("feedback", label);
    return count(_impl->alerts.get(), f, "feedback_counts");
  };
  return core::FeedbackCounts{labelled(core::kFeedbackConfirmed), labelled(core::kFeedbackFalse)};
}

bool MongoStore::transient_failure(const std::exception& error) const {
  const auto* e = dynamic_cast<const MongoError*>(&error);
  return e != nullptr && e->transient();
}

}  // namespace fleettwin::store
