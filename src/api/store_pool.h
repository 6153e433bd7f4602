#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "store/twin_store.h"

namespace fleettwin::api {

/// Lends store connections to HTTP worker threads: a store instance is a one-thread object, and opening one
/// per request would cost a file open and a schema check each time. Any thread.
class StorePool {
 public:
  using Opener = std::function<std::unique_ptr<store::TwinStore>()>;

  explicit StorePool(Opener open) : _open(std::move(open)) {}

  /// A store borrowed for one request; returned to the pool when the lease goes out of scope.
  class Lease {
   public:
    Lease(StorePool& pool, std::unique_ptr<store::TwinStore> s) : _pool(pool), _store(std::move(s)) {}
    ~Lease() { _pool.give_back(std::move(_store)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    store::TwinStore* operator->() { return _store.get(); }
    store::TwinStore& operator*() { return *_store; }

   private:
    StorePool& _pool;
    std::unique_ptr<store::TwinStore> _store;
  };

  /// An idle store, or a new one. Throws ApiError(503) when no store is configured.
  Lease acquire();
  bool configured() const { return static_cast<bool>(_open); }

 private:
  void give_back(std::unique_ptr<store::TwinStore> s);

  Opener _open;
  std::mutex _mu;
  std::vector<std::unique_ptr<store::TwinStore>> _idle;
};

}  // namespace fleettwin::api
