#include "api/store_pool.h"

#include "api/settings.h"

namespace fleettwin::api {

StorePool::Lease StorePool::acquire() {
  {
    std::lock_guard lock(_mu);
    if (!_idle.empty()) {
      auto s = std::move(_idle.back());
      _idle.pop_back();
      return Lease(*this, std::move(s));
    }
  }
  if (!_open) throw ApiError(503, "no store configured");
  return Lease(*this, _open());
}

void StorePool::give_back(std::unique_ptr<store::TwinStore> s) {
  // A store that threw mid-request is still usable (adapters roll back); keep a bounded number idle.
  std::lock_guard lock(_mu);
  if (_idle.size() < 16) _idle.push_back(std::move(s));
}

}  // namespace fleettwin::api
