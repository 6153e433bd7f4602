#include "api/model_catalog.h"

#include <algorithm>
#include <cstdint>

#include <simdjson.h>

#include "codec/json.h"
#include "codec/json_writer.h"

namespace fleettwin::api {

namespace {

constexpr std::string_view kArchivePrefix = "anomaly.v";    // stages::kArchiveKeyPrefix
constexpr std::string_view kGatePrefix = "anomaly.gate.v";  // stages::kGateKeyPrefix
constexpr std::size_t kMaxVersionBytes = 200;

/// The metadata JSON of an artifact, or empty.
std::string artifact_meta(std::string_view artifact) {
  if (artifact.size() < 16 || artifact.substr(0, 8) != "FTMODEL1") return {};
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = n << 8 | static_cast<unsigned char>(artifact[8 + static_cast<std::size_t>(i)]);
  if (n > artifact.size() - 16) return {};
  std::string meta(artifact.substr(16, n));
  return codec::valid_json_value(meta) ? meta : std::string{};
}

/// The version and creation time a metadata document names (empty version: none).
std::pair<std::string, int64_t> version_of(const std::string& meta) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(meta).get(doc) != simdjson::SUCCESS) return {};
  std::string_view version;
  int64_t created = 0;
  if (doc["version"].get_string().get(version) != simdjson::SUCCESS || version.size() > kMaxVersionBytes)
    return {};
  if (doc["created_ms"].get_int64().get(created) != simdjson::SUCCESS) created = 0;
  return {std::string(version), created};
}

/// Whether a gate document says the candidate passed.
bool gate_passed(const std::string& gate) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  bool passed = false;
  return parser.parse(gate).get(doc) == simdjson::SUCCESS &&
         doc["passed"].get_bool().get(passed) == simdjson::SUCCESS && passed;
}

}  // namespace

void ModelCatalog::remember(const std::string& version, std::string meta, std::string artifact,
                            int64_t created_ms) {
  auto& v = _versions[version];
  v.meta = std::move(meta);
  if (!artifact.empty()) v.artifact = std::move(artifact);
  v.created_ms = created_ms;
  while (_versions.size() > kMaxVersions) {  // the oldest model goes first
    auto oldest = std::min_element(_versions.begin(), _versions.end(), [](const auto& a, const auto& b) {
      return a.second.created_ms < b.second.created_ms;
    });
    _versions.erase(oldest);
  }
}

void ModelCatalog::keep(const std::string& key, std::string_view value) {
  if (key.starts_with(kGatePrefix)) {
    const std::string version = key.substr(kGatePrefix.size());
    if (value.size() > kMaxGateBytes || version.empty() || version.size() > kMaxVersionBytes) return;
    std::string gate(value);
    if (!codec::valid_json_value(gate)) return;
    std::lock_guard lock(_mu);
    if (!_versions.contains(version) && _versions.size() >= kMaxVersions) return;
    _versions[version].gate = std::move(gate);  // possibly before its artifact: created_ms 0 for now
    return;
  }
  if (key == "anomaly.shadow" && value.empty()) {  // the trainer promoted the shadow: none any more
    std::lock_guard lock(_mu);
    _meta.erase(key);
    _shadow_artifact.clear();
    _shadow_version.clear();
    return;
  }
  std::string meta = artifact_meta(value);
  if (meta.empty()) return;
  auto [version, created] = version_of(meta);
  std::lock_guard lock(_mu);
  if (key.starts_with(kArchivePrefix)) {
    if (!version.empty()) remember(version, std::move(meta), std::string(value), created);
    return;
  }
  _meta[key] = meta;
  if (key == "anomaly") _active_version = version;
  if (key == "anomaly.shadow") {
    _shadow_artifact = std::string(value);
    _shadow_version = version;
  }
  // Models published without the trainer (`fleettwin train`, the warm-up model) get a card too.
  if (!version.empty() && (key == "anomaly" || key == "anomaly.shadow"))
    remember(version, std::move(meta), std::string(value), created);
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

std::string ModelCatalog::artifact(const std::string& version) const {
  std::lock_guard lock(_mu);
  auto it = _versions.find(version);
  return it == _versions.end() ? std::string{} : it->second.artifact;
}

ModelCatalog::Card ModelCatalog::card_of(const std::string& version, const Version& v) const {
  Card c;
  c.version = version;
  c.meta = v.meta;
  c.gate = v.gate.empty() ? "null" : v.gate;
  if (version == _active_version)
    c.role = "active";
  else if (version == _shadow_version)
    c.role = "shadow";
  else if (!v.gate.empty())
    c.role = gate_passed(v.gate) ? "candidate" : "refused";
  else
    c.role = "earlier";
  return c;
}

std::vector<ModelCatalog::Card> ModelCatalog::cards() const {
  std::lock_guard lock(_mu);
  std::vector<std::pair<int64_t, Card>> all;
  for (const auto& [version, v] : _versions)
    if (!v.meta.empty()) all.emplace_back(v.created_ms, card_of(version, v));
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<Card> out;
  out.reserve(all.size());
  for (auto& [created, c] : all) out.push_back(std::move(c));
  return out;
}

std::optional<ModelCatalog::Card> ModelCatalog::card(const std::string& version) const {
  std::lock_guard lock(_mu);
  auto it = _versions.find(version);
  if (it == _versions.end() || it->second.meta.empty()) return std::nullopt;
  return card_of(version, it->second);
}

}  // namespace fleettwin::api
