// Models: their cards (metadata, lineage, the promotion gate's results, live alerts), promoting the shadow
// model, asking the trainer for a candidate and rolling back to an earlier model (admin).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <simdjson.h>

#include "api/http_helpers.h"
#include "api/routes.h"
#include "api/settings.h"
#include "codec/json.h"
#include "codec/json_writer.h"
#include "codec/retrain_request.h"
#include "core/clock.h"
#include "core/topics.h"

namespace fleettwin::api {

namespace {

namespace fs = std::filesystem;

/// Model metadata files written by the train stage (one JSON document per model version), newest first.
std::vector<std::string> model_files(const std::string& dir) {
  std::vector<std::pair<fs::file_time_type, std::string>> docs;
  std::error_code ec;
  if (!dir.empty() && fs::is_directory(dir, ec)) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() != ".json") continue;
      std::ifstream in(e.path());
      std::stringstream ss;
      ss << in.rdbuf();
      if (codec::valid_json_value(ss.str())) docs.emplace_back(e.last_write_time(ec), ss.str());
    }
  }
  std::sort(docs.begin(), docs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  out.reserve(docs.size());
  for (auto& doc : docs) out.push_back(std::move(doc.second));
  return out;
}

/// Anomaly alerts per model version among the store's newest 10,000: the live side of the model cards.
std::map<std::string, int64_t> live_alerts(ApiContext& ctx) {
  std::map<std::string, int64_t> out;
  if (!ctx.stores.configured()) return out;
  for (const auto& a : ctx.stores.acquire()->alerts("", 10'000))
    if (a.kind == "anomaly") ++out[a.model_version];
  return out;
}

void append_card(std::string& out, const ModelCatalog::Card& c,
                 const std::map<std::string, int64_t>& alerts) {
  out += "{\"version\":";
  codec::append_json_string(out, c.version);
  out += ",\"role\":";
  codec::append_json_string(out, c.role);
  const auto it = alerts.find(c.version);
  out += ",\"live_alerts\":" + std::to_string(it == alerts.end() ? 0 : it->second);
  out += ",\"gate\":" + c.gate + ",\"meta\":" + c.meta + "}";
}

void list_models(ApiContext& ctx, httplib::Response& res) {
  const auto files = model_files(ctx.options.models_dir);
  std::string out = "{\"items\":[";
  // First the models the score stage uses, from fleet.models: "anomaly" is active, "anomaly.shadow" shadow.
  bool first = !ctx.models.append_items(out);
  for (const auto& doc : files) {
    out += (first ? "" : ",") + doc;
    first = false;
  }
  out += "],\"cards\":[";
  const auto alerts = live_alerts(ctx);
  first = true;
  for (const auto& c : ctx.models.cards()) {
    if (!first) out += ',';
    first = false;
    append_card(out, c, alerts);
  }
  send_json(res, out + "]}");
}

void model_card(ApiContext& ctx, httplib::Response& res, const std::string& version) {
  const auto card = ctx.models.card(version);
  if (!card) throw ApiError(404, "no model '" + version + "' on fleet.models");
  std::string out;
  append_card(out, *card, live_alerts(ctx));
  send_json(res, out);
}

void publish_or_503(ApiContext& ctx, const std::string& key, std::string value) {
  if (!ctx.options.log) throw ApiError(503, "no log to publish to (start the API with --kafka)");
  std::vector<log::OutRecord> records;
  records.push_back(log::OutRecord{core::topics::kModels, key, std::move(value), {}, -1, 0});
  if (ctx.publish(std::move(records)) != 0)
    throw ApiError(503, "the log did not take the record; nothing changed");
}

/// The shadow model becomes the active one (the score stage swaps models between batches).
void promote(ApiContext& ctx, httplib::Response& res) {
  auto shadow = ctx.models.shadow();
  if (shadow.artifact.empty()) throw ApiError(409, "no shadow model on fleet.models to promote");
  publish_or_503(ctx, "anomaly", std::move(shadow.artifact));
  send_json(res, "{\"promoted\":" + shadow.meta + "}", 202);
}

/// Asks the trainer for a candidate now ({"detail": text} optional): a "retrain.request" record.
void train(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  codec::RetrainRequest r;
  r.reason = "api";
  r.ts = core::wall_clock_ms();
  if (!req.body.empty()) {
    if (req.body.size() > codec::kMaxRetrainRequestBytes) throw ApiError(413, "body larger than 8 KiB");
    simdjson::dom::parser parser;
    simdjson::dom::object doc;
    if (parser.parse(req.body).get_object().get(doc) != simdjson::SUCCESS)
      throw ApiError(400, "body must be a JSON object: {\"detail\": text}");
    if (simdjson::dom::element d; doc["detail"].get(d) == simdjson::SUCCESS) {
      std::string_view text;
      if (d.get_string().get(text) != simdjson::SUCCESS || text.size() > codec::kMaxRetrainDetail)
        throw ApiError(400, "\"detail\" must be a string of at most 1,024 bytes");
      r.detail = std::string(text);
    }
  }
  std::string value = codec::retrain_request_to_json(r);
  publish_or_503(ctx, "retrain.request", value);
  send_json(res, "{\"requested\":" + value + "}", 202);
}

/// An earlier model kept on fleet.models ("anomaly.v<version>") becomes the active one again.
void rollback(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  simdjson::dom::parser parser;
  simdjson::dom::object doc;
  std::string_view version;
  if (req.body.size() > 4096 || parser.parse(req.body).get_object().get(doc) != simdjson::SUCCESS ||
      doc["version"].get_string().get(version) != simdjson::SUCCESS || version.empty())
    throw ApiError(400, "body must be {\"version\": \"<model version>\"}");
  std::string artifact = ctx.models.artifact(std::string(version));
  if (artifact.empty())
    throw ApiError(404, "no kept artifact of model '" + std::string(version) + "' on fleet.models");
  publish_or_503(ctx, "anomaly", std::move(artifact));
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("active").string(version).end_object();
  send_json(res, out, 202);
}

}  // namespace

void add_model_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/api/v1/models", Role::kViewer,
             [&ctx](auto&, auto& res, auto&) { list_models(ctx, res); });
  router.add("GET", "/api/v1/models/{version}", Role::kViewer,
             [&ctx](auto&, auto& res, const auto& p) { model_card(ctx, res, p[0]); });
  router.add("POST", "/api/v1/models/promote", Role::kAdmin,
             [&ctx](auto&, auto& res, auto&) { promote(ctx, res); });
  router.add("POST", "/api/v1/models/train", Role::kAdmin,
             [&ctx](const httplib::Request& req, auto& res, auto&) { train(ctx, req, res); });
  router.add("POST", "/api/v1/models/rollback", Role::kAdmin,
             [&ctx](const httplib::Request& req, auto& res, auto&) { rollback(ctx, req, res); });
}

}  // namespace fleettwin::api
