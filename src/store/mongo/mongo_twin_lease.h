#pragma once

// Twin writes on a server whose conditional updates are not atomic (FerretDB 1.x): per-car lease locks
// instead of the conditional upsert. docs/operations.md, "FerretDB 1.x and the MongoDB adapter", says why.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/twin.h"
#include "store/mongo/mongo_bson.h"
#include "store/mongo/mongo_bulk.h"

namespace fleettwin::store::mongo {

/// Applies twins under lease locks: each car is locked with a lease document in `twin_locks` (_id = car;
/// inserting it is atomic through the unique _id index), its stored (seq, version) read, the seq guard
/// applied here in batch order, and the winning state replaced by _id, which cannot fail with a duplicate
/// key. A writer never waits while holding a lock: it writes the cars it got, releases them, then retries
/// the others. A lease lives kLeaseMs; a holder writes only while its lease is younger than half of that,
/// and a lease this instance owns is taken over at once (a leftover of a failed release). Lease times are
/// each writer's wall clock, so writers on several hosts need synchronized clocks.
///
/// Threads: the store's thread; instances in several threads or processes coordinate through the server.
class TwinLeases {
 public:
  /// Writes the twins at `which` (indices into the twins given to upsert()) by _id, as one request.
  using Replace = std::function<void(const std::vector<size_t>&)>;

  /// `owner` is unique per store instance; `lock_policy` is how the lease inserts retry and count.
  TwinLeases(mongoc_client_t* client, const std::string& database, mongoc_collection_t* twins,
             std::string owner, const BulkPolicy& lock_policy);
  /// Applies every twin newer than the stored one (seq, then version), in batch order per car; returns how
  /// many of `twins` applied. Throws on a failed read or replace, after releasing the locks it holds.
  int64_t upsert(const std::vector<core::Twin>& twins, const Replace& replace);

 private:
  /// One locked car with a newer state: its winning twin and how many of its updates apply.
  struct Write {
    const std::string* car;
    size_t winner;
    int64_t applied;
  };
  using Versions = std::map<std::string, std::pair<int64_t, int64_t>>;  ///< car -> stored (seq, version)

  std::vector<std::string> lock(const std::vector<std::string>& waiting, int64_t now,
                                std::vector<std::string>& busy);
  Versions stored_versions(const std::vector<std::string>& cars);
  /// Writes the newest state of each locked car; how many twins applied, or nothing when the lease grew
  /// too old before any write (the cars then go to `still`, as do those left when it grows old midway).
  std::optional<int64_t> write_locked(const std::vector<std::string>& got,
                                      const std::vector<core::Twin>& twins,
                                      const std::map<std::string, std::vector<size_t>>& by_car, int64_t now,
                                      const Replace& replace, std::vector<std::string>& still);
  void release(const std::vector<std::string>& cars, int64_t now, bool expired_only, bool throw_on_error);

  CollectionPtr _locks;
  mongoc_collection_t* _twins;
  std::string _owner;
  BulkPolicy _lock_policy;
};

}  // namespace fleettwin::store::mongo
