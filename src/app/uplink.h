#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "catalog/catalog.h"
#include "config/config.h"
#include "core/metrics.h"
#include "log/log.h"
#include "registry/client.h"
#include "stages/stage.h"
#include "store/twin_store.h"

namespace fleettwin::stages {
class Spool;
class SpoolBudget;
struct UplinkStatus;
class UplinkSender;
class Downlink;
}  // namespace fleettwin::stages

namespace fleettwin::app {

/// What the pipeline hands the uplink: the site's log, registry, store and metrics. All outlive the Uplink.
struct UplinkHost {
  log::Log* site_log = nullptr;
  core::Metrics* metrics = nullptr;
  std::shared_ptr<registry::SchemaRegistryClient> edge_registry;
  std::shared_ptr<const catalog::Catalog> catalog;
  std::string data_dir;
};

/// An edge site's replication to central (`up --uplink BROKERS --site NAME`, docs/architecture.md "Edge sites
/// and the central cluster"): the capture stage that spools what the site replicates, the sender that moves
/// the spool to central, and the downlink that brings central commands to this site's cars. Built, started
/// and stopped by run_pipeline's main thread; the parts run on their own threads.
class Uplink {
 public:
  /// Null unless uplink.brokers is set. Throws ConfigError for a bad site name, a missing uplink.registry, or
  /// a process that is not an embedded `up`.
  static std::unique_ptr<Uplink> open(const config::Config& config, const UplinkHost& host, bool embedded_up);
  ~Uplink();
  Uplink(const Uplink&) = delete;
  Uplink& operator=(const Uplink&) = delete;

  /// After a kill, the telemetry the store took and the spool never did (cars resume after the store's
  /// newest seq): read back from the store and spooled, encoded with `schema_id`, so central gets every (car,
  /// seq) the site stored.
  void catch_up_from_store(store::TwinStore& store, int32_t schema_id);
  /// The capture stage, for the pipeline to run after its other stages (it reads their outputs).
  std::unique_ptr<stages::Stage> capture_stage();
  /// Starts the sender and the downlink.
  void start();
  /// Stops both; waits up to `drain` for the spool to empty first while central acknowledges.
  void stop(std::chrono::milliseconds drain);

  /// " | uplink live, spool 1.2 of 1074 MB" for the progress line (the state says `full` while the cars are
  /// held back).
  std::string progress() const;

  Uplink(const config::Config& config, const UplinkHost& host);

 private:
  UplinkHost _host;
  std::string _site;
  std::unique_ptr<log::Log> _central;
  /// Central for the downlink's consumer only: a static member of its group (Uplink::Uplink says why).
  std::unique_ptr<log::Log> _downlink_central;
  std::shared_ptr<stages::Spool> _spool;
  std::shared_ptr<stages::SpoolBudget> _budget;
  std::shared_ptr<stages::UplinkStatus> _status;
  std::unique_ptr<stages::UplinkSender> _sender;
  std::unique_ptr<stages::Downlink> _downlink;
};

/// Whether `site` is a valid site name: [a-z0-9-]{1,64}.
bool valid_site_name(const std::string& site);

/// The least the spool's measured budget may be (uplink.disk_budget_min; with the simulator, at least 24 h of
/// its configured rate at 1 KiB a message). Not used when uplink.disk_budget is set.
int64_t uplink_budget_floor(const config::Config& config);

}  // namespace fleettwin::app
