#include "api/context.h"

#include "api/settings.h"

namespace fleettwin::api {

namespace {

ApiOptions with_catalog(ApiOptions o) {
  if (!o.catalog) o.catalog = catalog::builtin();
  return o;
}

}  // namespace

ApiContext::ApiContext(ApiOptions o)
    : options(with_catalog(std::move(o))),
      stores(options.open_store),
      hub(options.max_stream_clients, options.stream_queue_bytes, options.max_streams_per_token) {}

int64_t ApiContext::publish(std::vector<log::OutRecord> records) {
  std::lock_guard lock(_producer_mu);
  if (!_producer) _producer = options.log->producer();
  for (auto& r : records) _producer->send(std::move(r));
  return _producer->flush(std::chrono::seconds(10));
}

core::Twin twin_or_404(store::TwinStore& s, const std::string& car) {
  if (!core::valid_car_id(car)) throw ApiError(400, "bad car id '" + car + "'");
  auto twin = s.get_twin(car);
  if (!twin) throw ApiError(404, "no car '" + car + "'");
  return std::move(*twin);
}

}  // namespace fleettwin::api
