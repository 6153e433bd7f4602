#include "store/mongo/mongo_twin_lease.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>
#include <thread>

#include "core/clock.h"
#include "store/mongo/mongo_cursor.h"

namespace fleettwin::store::mongo {
namespace {

constexpr int64_t kLeaseMs = 5'000;
// Statements per update command: FerretDB 1.x pins a connection per matching statement until the command
// ends (docs/operations.md, "FerretDB 1.x and the MongoDB adapter").
constexpr size_t kUpdatesPerCommand = 16;

int64_t now_ms() { return core::wall_clock_ms(); }

}  // namespace

TwinLeases::TwinLeases(mongoc_client_t* client, const std::string& database, mongoc_collection_t* twins,
                       std::string owner, const BulkPolicy& lock_policy)
    : _locks(mongoc_client_get_collection(client, database.c_str(), "twin_locks")),
      _twins(twins),
      _owner(std::move(owner)),
      _lock_policy(lock_policy) {}

int64_t TwinLeases::upsert(const std::vector<core::Twin>& twins, const Replace& replace) {
  std::map<std::string, std::vector<size_t>> by_car;
  for (size_t i = 0; i < twins.size(); ++i) by_car[twins[i].id].push_back(i);
  std::vector<std::string> waiting;
  waiting.reserve(by_car.size());
  for (const auto& [car, unused] : by_car) waiting.push_back(car);
  int64_t applied = 0;
  int64_t backoff_ms = 2;
  while (!waiting.empty()) {
    const int64_t now = now_ms();
    std::vector<std::string> still;
    const std::vector<std::string> got = lock(waiting, now, still);
    std::optional<int64_t> written;
    std::exception_ptr failure;
    try {
      if (!got.empty()) written = write_locked(got, twins, by_car, now, replace, still);
    } catch (...) {
      failure = std::current_exception();
    }
    release(got, now, false, !failure);
    if (failure) std::rethrow_exception(failure);
    release(still, now, true, true);
    // Progress when some car was locked and written; when all were busy, or released unwritten, wait.
    if (written) {
      applied += *written;
      backoff_ms = 2;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 100);
    }
    waiting = std::move(still);
  }
  return applied;
}

std::vector<std::string> TwinLeases::lock(const std::vector<std::string>& waiting, int64_t now,
                                          std::vector<std::string>& busy) {
  std::vector<Bson> lock_docs;
  lock_docs.reserve(waiting.size());
  for (const auto& car : waiting) {
    Bson d;
    d.str("_id", car).str("owner", _owner).date("at", now);
    lock_docs.push_back(std::move(d));
  }
  const BulkOutcome o = run_bulk(
      _locks.get(), lock_docs.size(),
      [&](mongoc_bulk_operation_t* b, size_t i) { add_insert(b, lock_docs[i]); }, _lock_policy);
  std::vector<bool> taken(waiting.size(), false);
  for (size_t i : o.duplicates) taken[i] = true;
  std::vector<std::string> got;
  for (size_t i = 0; i < waiting.size(); ++i) (taken[i] ? busy : got).push_back(waiting[i]);
  return got;
}

TwinLeases::Versions TwinLeases::stored_versions(const std::vector<std::string>& cars) {
  Versions stored;
  find(
      _twins, id_in(cars), find_opts({}, 0, {"reported.seq", "version"}),
      [&](const bson_t* d) {
        stored[get_str(d, "_id")] = {get_int(d, "reported.seq"), get_int(d, "version")};
      },
      "twin guard");
  return stored;
}

std::optional<int64_t> TwinLeases::write_locked(const std::vector<std::string>& got,
                                                const std::vector<core::Twin>& twins,
                                                const std::map<std::string, std::vector<size_t>>& by_car,
                                                int64_t now, const Replace& replace,
                                                std::vector<std::string>& still) {
  Versions stored = stored_versions(got);
  if (now_ms() - now >= kLeaseMs / 2) {
    // Too slow to write safely before the lease may be taken over: release and lock again.
    still.insert(still.end(), got.begin(), got.end());
    return std::nullopt;
  }
  // The guard in batch order per car.
  std::vector<Write> writes;
  for (const auto& car : got) {
    auto it = stored.find(car);
    std::optional<size_t> winner;
    int64_t n = 0;
    for (size_t i : by_car.at(car)) {
      const std::pair<int64_t, int64_t> mine{twins[i].reported.seq, twins[i].version};
      if (it == stored.end() || mine > it->second) {
        it = stored.insert_or_assign(car, mine).first;
        winner = i;
        ++n;
      }
    }
    if (winner) writes.push_back(Write{&car, *winner, n});
  }
  int64_t applied = 0;
  std::vector<size_t> ops;
  for (size_t at = 0; at < writes.size(); at += kUpdatesPerCommand) {
    if (at > 0 && now_ms() - now >= kLeaseMs / 2) {
      for (size_t j = at; j < writes.size(); ++j) still.push_back(*writes[j].car);
      break;
    }
    const size_t end = std::min(writes.size(), at + kUpdatesPerCommand);
    ops.clear();
    for (size_t j = at; j < end; ++j) ops.push_back(writes[j].winner);
    replace(ops);
    for (size_t j = at; j < end; ++j) applied += writes[j].applied;
  }
  return applied;
}

void TwinLeases::release(const std::vector<std::string>& cars, int64_t now, bool expired_only,
                         bool throw_on_error) {
  if (cars.empty()) return;
  Bson f = id_in(cars);
  if (expired_only) {
    f.array("$or", [&](ArrayWriter& any) {
      any.child([&](DocWriter& expired) {
        expired.child("at", [&](DocWriter& c) { c.date("$lt", now - kLeaseMs); });
      });
      any.child([&](DocWriter& mine) { mine.str("owner", _owner); });
    });
  } else {
    f.str("owner", _owner);  // never another writer's lease that replaced an expired one
  }
  bson_error_t error;
  if (!mongoc_collection_delete_many(_locks.get(), f.get(), nullptr, nullptr, &error) && throw_on_error) {
    throw MongoError("releasing twin locks", error);
  }
}

}  // namespace fleettwin::store::mongo
