#pragma once

#include <httplib.h>

#include <string>

#include "api/context.h"
#include "api/router.h"

namespace fleettwin::api {

// The REST API, one group of related routes per file (system_routes.cc, twin_routes.cc, ...). Each adds
// its routes to `router`; the handlers are short functions over `ctx`, which outlives the server. The
// server registers the groups in the order below, which is the order ApiServer::routes() lists.

/// /healthz, /readyz, /metrics, the OpenAPI document, /whoami and the signal catalog.
void add_system_routes(Router& router, ApiContext& ctx);
/// Twins: the filtered, paged list, one twin, and a car's downsampled history.
void add_twin_routes(Router& router, ApiContext& ctx);
/// Commands: a car's commands, desired settings (which become commands on the log) and one command.
void add_command_routes(Router& router, ApiContext& ctx);
/// Alerts: the filtered list, acknowledging and labelling one; a model version's labels.
void add_alert_routes(Router& router, ApiContext& ctx);
/// Fleet-wide views: the summary, the throughput samples and every car's position.
void add_fleet_routes(Router& router, ApiContext& ctx);
/// Models: their metadata and promoting the shadow model.
void add_model_routes(Router& router, ApiContext& ctx);
/// GET /api/v1/drift: the score stage's drift watch (per-signal PSI), when it runs in this process.
void add_drift_routes(Router& router, ApiContext& ctx);
/// The live stream (server-sent events).
void add_stream_routes(Router& router, ApiContext& ctx);
/// Window aggregates: the stored windows of one aggregate (aggregate_view.h).
void add_aggregate_routes(Router& router, ApiContext& ctx);
/// The dead-letter queues: newest records and counts per stage and reason (DlqRecent).
void add_dlq_routes(Router& router, ApiContext& ctx);

/// The dashboard's static files at / from `web_dir` (or a page saying how to build them when it holds no
/// index.html), and a JSON body for the errors httplib answers itself (404 for an unknown route).
void serve_dashboard(httplib::Server& http, const std::string& web_dir);

}  // namespace fleettwin::api
