#include "api/model_catalog.h"

#include <cstdint>

#include "codec/json.h"
#include "codec/json_writer.h"

namespace fleettwin::api {

void ModelCatalog::keep(const std::string& key, std::string_view artifact) {
  if (artifact.size() < 16 || artifact.substr(0, 8) != "FTMODEL1") return;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = n << 8 | static_cast<unsigned char>(artifact[8 + static_cast<std::size_t>(i)]);
  if (n > artifact.size() - 16) return;
  const std::string meta(artifact.substr(16, n));
  if (!codec::valid_json_value(meta)) return;
  std::lock_guard lock(_mu);
  _meta[key] = meta;
  if (key == "anomaly.shadow") _shadow_artifact = std::string(artifact);
}

bool ModelCatalog::append_items(std::string& out) const {
  std::lock_guard lock(_mu);
  bool first = true;
  for (const auto& [key, meta] : _meta) {
    out += first ? "{\"key\":" : ",{\"key\":";
    first = false;
    codec::append_json_string(out, key);
    out += ",\"role\":";
    codec::append_json_string(out, key == "anomaly" ? "active" : key == "anomaly.shadow" ? "shadow" : key);
    out += ",\"meta\":" + meta + "}";
  }
  return !first;
}

ModelCatalog::Shadow ModelCatalog::shadow() const {
  std::lock_guard lock(_mu);
  Shadow s;
  s.artifact = _shadow_artifact;
  if (auto it = _meta.find("anomaly.shadow"); it != _meta.end()) s.meta = it->second;
  return s;
}

}  // namespace fleettwin::api
