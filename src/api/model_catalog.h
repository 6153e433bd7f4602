#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace fleettwin::api {

/// The models the score stage uses, as last seen on fleet.models: each key's metadata JSON ("anomaly" is the
/// active model, "anomaly.shadow" the shadow) and the whole shadow artifact, kept for promotion. Fed by the
/// API's background thread, read by HTTP workers; locked.
class ModelCatalog {
 public:
  /// Keeps the metadata of a model artifact read from fleet.models; ignores a record that is not one. The
  /// artifact format (src/ml/training.h) starts with "FTMODEL1", a u64 little-endian length and the
  /// metadata JSON; reading that header here keeps the API independent of the ML library and its weights.
  void keep(const std::string& key, std::string_view artifact);

  /// The models as JSON objects {"key","role","meta"}, comma-separated (no brackets), and whether any.
  bool append_items(std::string& out) const;

  /// The newest shadow artifact (empty: none) and its metadata JSON.
  struct Shadow {
    std::string artifact, meta;
  };
  Shadow shadow() const;

 private:
  mutable std::mutex _mu;
  std::map<std::string, std::string> _meta;  // fleet.models key -> metadata JSON of its newest artifact
  std::string _shadow_artifact;              // newest "anomaly.shadow" artifact
};

}  // namespace fleettwin::api
