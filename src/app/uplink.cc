#include "app/uplink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "app/log_factory.h"
#include "codec/avro.h"
#include "core/metric_catalog.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "stages/uplink/downlink.h"
#include "stages/uplink/spool.h"
#include "stages/uplink/spool_budget.h"
#include "stages/uplink/uplink_capture.h"
#include "stages/uplink/uplink_sender.h"

namespace fleettwin::app {

using config::ConfigError;
namespace keys = config::keys;

bool valid_site_name(const std::string& site) {
  // "fleet" would make `fleet.fleet.telemetry` read as central's own topic (stages/sites.h).
  if (site.empty() || site.size() > 64 || site == "fleet") return false;
  for (const char c : site)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

int64_t uplink_budget_floor(const config::Config& config) {
  const int64_t least = config.get(keys::uplink_disk_budget_min);
  // Real cars (`--no-sim`): nothing is known of their traffic until it is measured.
  if (config.get(keys::up_no_sim)) return least;
  const double per_s = static_cast<double>(config.get(keys::sim_cars)) * 1000.0 /
                       static_cast<double>(std::max<int64_t>(1, config.get(keys::sim_interval).count()));
  return std::max(least, static_cast<int64_t>(per_s * 86'400.0 * 1024.0));
}

std::unique_ptr<Uplink> Uplink::open(const config::Config& config, const UplinkHost& host, bool embedded_up) {
  if (config.get(keys::uplink_brokers).empty()) return nullptr;
  if (!embedded_up)
    throw ConfigError(
        "--uplink replicates an embedded `up`; a site with its own Kafka replicates with MirrorMaker 2 "
        "(docs/architecture.md)");
  const std::string site = config.get(keys::site);
  if (!valid_site_name(site))
    throw ConfigError("--site \"" + site + "\": a site name is 1 to 64 of a-z, 0-9 and '-'");
  if (config.get(keys::uplink_registry).empty())
    throw ConfigError("--uplink needs --uplink-registry URL: central's schema registry");
  return std::make_unique<Uplink>(config, host);
}

Uplink::Uplink(const config::Config& config, const UplinkHost& host)
    : _host(host),
      _site(config.get(keys::site)),
      _spool(std::make_shared<stages::Spool>(host.data_dir + "/uplink.sqlite")),
      _budget(std::make_shared<stages::SpoolBudget>(config.get(keys::uplink_disk_budget),
                                                    uplink_budget_floor(config), _spool->rate())),
      _status(std::make_shared<stages::UplinkStatus>()) {
  auto settings = kafka_settings(config, config.get(keys::uplink_brokers));
  log::KafkaOptions options;
  // Central may be away for hours: a call to it gives up soon and is tried again, so stopping never waits.
  options.operation_timeout = std::chrono::seconds(5);
  // A site has one downlink, so its consumer is a static member of its group (group.instance.id): an edge
  // killed and started again takes its old member's place at once. As a dynamic member it waited for the
  // dead one's session to expire (45 s) before the group assigned it anything, and after an outage the
  // commands central held for the site came that much later, past the end of a car's visit (issue 18's test:
  // the command stayed pending).
  auto downlink_settings = settings;
  downlink_settings["group.instance.id"] = stages::Downlink::group_of(_site);
  _central = std::make_unique<log::KafkaLog>(std::move(settings), options);
  _downlink_central = std::make_unique<log::KafkaLog>(std::move(downlink_settings), options);
  for (const auto& m : _spool->marks()) _status->saw(m.car);
  host.metrics->gauge(core::metric::kUplinkEnabled).set(1);
  host.metrics->gauge(core::metric::kUplinkSpoolBudget).set(_budget->bytes());
  stages::UplinkTarget target;
  target.central = _central.get();
  target.site = _site;
  target.edge_registry = host.edge_registry;
  registry::SchemaRegistryClientOptions ro;
  ro.token = config.get(keys::registry_token);
  target.central_registry =
      std::make_shared<registry::SchemaRegistryClient>(config.get(keys::uplink_registry), ro);
  target.topics = topic_config(config);
  target.batch = static_cast<std::size_t>(config.get(keys::uplink_batch));
  _sender = std::make_unique<stages::UplinkSender>(_spool, std::move(target), _status, *host.metrics);
  _downlink =
      std::make_unique<stages::Downlink>(*_downlink_central, *host.site_log, _site, _status, *host.metrics);
  spdlog::info("uplink: site {} to {} (spool {}, {} bytes waiting, budget {} bytes)", _site,
               config.get(keys::uplink_brokers), host.data_dir + "/uplink.sqlite", _spool->bytes(),
               _budget->bytes());
}

Uplink::~Uplink() { stop(std::chrono::milliseconds(0)); }

void Uplink::catch_up_from_store(store::TwinStore& store, int32_t schema_id) {
  std::unordered_map<std::string, stages::CarMark> marks;
  for (auto& m : _spool->marks()) marks.emplace(m.car, m);
  const codec::TelemetryAvro avro(_host.catalog);
  // The partition the site's log keeps a car's events in, as the capture stage says of live records
  // (core::topics::kHeaderSitePartition): central pairs them with the site's scores of that partition.
  const auto partitions = static_cast<int32_t>(_host.site_log->end_offsets(core::topics::kTelemetry).size());
  int64_t spooled = 0;
  for (const auto& [car, stored_seq] : store.max_seq_per_car()) {
    _status->saw(car);
    const auto it = marks.find(car);
    const int64_t mark = it == marks.end() ? 0 : it->second.seq;
    if (stored_seq <= mark) continue;
    const int64_t from = it == marks.end() ? 0 : it->second.ts;
    std::vector<log::OutRecord> out;
    stages::CarMark newest{car, mark, from};
    const std::string partition =
        partitions > 0 ? std::to_string(log::partition_for_key(car, partitions)) : "";
    for (const auto& row : store.history(car, from, INT64_MAX, 1'000'000)) {
      if (row.t.seq <= mark) continue;
      log::OutRecord& r = out.emplace_back();
      r.topic = core::topics::kTelemetry;
      r.key = car;
      if (!partition.empty()) r.headers.push_back({core::topics::kHeaderSitePartition, partition});
      avro.encode(row.t, schema_id, r.value);
      if (row.t.seq > newest.seq) newest = {car, row.t.seq, row.t.ts};
    }
    spooled += static_cast<int64_t>(out.size());
    _spool->append(out, {newest});
  }
  if (spooled > 0)
    spdlog::info("uplink: {} stored telemetry records the spool had not taken before the restart, spooled",
                 spooled);
}

std::unique_ptr<stages::Stage> Uplink::capture_stage() {
  return std::make_unique<stages::UplinkCapture>(
      _spool, _budget, _status, registry::TelemetryReader(_host.edge_registry, _host.catalog),
      *_host.metrics);
}

void Uplink::start() {
  _sender->start();
  _downlink->start();
}

void Uplink::stop(std::chrono::milliseconds drain) {
  const auto until = std::chrono::steady_clock::now() + drain;
  while (_spool->records() > 0 && _status->central_reachable && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (_downlink) _downlink->stop();
  if (_sender) _sender->stop();
  if (drain.count() > 0 && _spool->records() > 0)
    spdlog::info("uplink: {} records stay in the spool for the next run", _spool->records());
}

std::string Uplink::progress() const {
  char mb[64];
  std::snprintf(mb, sizeof mb, "%.1f of %.0f MB", static_cast<double>(_spool->bytes()) / 1e6,
                static_cast<double>(_budget->bytes()) / 1e6);
  return std::string(" | uplink ") + stages::uplink_state_name(_status->state()) + ", spool " + mb;
}

}  // namespace fleettwin::app
