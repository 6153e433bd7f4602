// Models: the metadata of the models on fleet.models and in the models directory, and promoting the shadow
// model to active (admin).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/http_helpers.h"
#include "api/routes.h"
#include "api/settings.h"
#include "codec/json.h"
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

void list_models(ApiContext& ctx, httplib::Response& res) {
  const auto files = model_files(ctx.options.models_dir);
  std::string out = "{\"items\":[";
  // First the models the score stage uses, from fleet.models: "anomaly" is active, "anomaly.shadow" shadow.
  bool first = !ctx.models.append_items(out);
  for (const auto& doc : files) {
    out += (first ? "" : ",") + doc;
    first = false;
  }
  send_json(res, out + "]}");
}

/// The shadow model becomes the active one (the score stage swaps models between batches).
void promote(ApiContext& ctx, httplib::Response& res) {
  auto shadow = ctx.models.shadow();
  if (shadow.artifact.empty()) throw ApiError(409, "no shadow model on fleet.models to promote");
  if (!ctx.options.log) throw ApiError(503, "no log to publish the model to (start the API with --kafka)");
  std::vector<log::OutRecord> records;
  records.push_back(log::OutRecord{core::topics::kModels, "anomaly", std::move(shadow.artifact), {}, -1, 0});
  if (ctx.publish(std::move(records)) != 0)
    throw ApiError(503, "the log did not take the model; nothing changed");
  send_json(res, "{\"promoted\":" + shadow.meta + "}", 202);
}

}  // namespace

void add_model_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/api/v1/models", Role::kViewer,
             [&ctx](auto&, auto& res, auto&) { list_models(ctx, res); });
  router.add("POST", "/api/v1/models/promote", Role::kAdmin,
             [&ctx](auto&, auto& res, auto&) { promote(ctx, res); });
}

}  // namespace fleettwin::api
