#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleettwin::api {

/// The models on fleet.models as the API shows them: each key's metadata JSON ("anomaly" is the active
/// model, "anomaly.shadow" the shadow), the whole shadow artifact (for promotion), and the model lifecycle's
/// records (docs/architecture.md "Model lifecycle"): every version the trainer kept ("anomaly.v<version>",
/// its artifact, for rollback) and the promotion gate's results ("anomaly.gate.v<version>"), from which the
/// model cards are built. Fed by the API's background thread, read by HTTP workers; locked.
class ModelCatalog {
 public:
  /// Versions kept at most (the oldest seen go first): fleet.models is outside input.
  static constexpr std::size_t kMaxVersions = 256;
  /// A gate record larger than this is ignored.
  static constexpr std::size_t kMaxGateBytes = std::size_t{64} * 1024;

  /// Keeps a record of fleet.models; ignores one it cannot read. The artifact format (src/ml/training.h)
  /// starts with "FTMODEL1", a u64 little-endian length and the metadata JSON; reading that header here
  /// keeps the API independent of the ML library and its weights.
  void keep(const std::string& key, std::string_view value);

  /// The models as JSON objects {"key","role","meta"}, comma-separated (no brackets), and whether any.
  bool append_items(std::string& out) const;

  /// The newest shadow artifact (empty: none) and its metadata JSON.
  struct Shadow {
    std::string artifact, meta;
  };
  Shadow shadow() const;

  /// The kept artifact of `version` (empty: none): what a rollback re-publishes.
  std::string artifact(const std::string& version) const;

  /// One model's card, its parts as JSON texts. `role`: active, shadow, refused (the gate said no),
  /// candidate (passed, waiting for a manual promotion) or earlier.
  struct Card {
    std::string version, role, meta, gate;  ///< gate "null" when none
  };
  /// Every model known, newest first (by creation time).
  std::vector<Card> cards() const;
  std::optional<Card> card(const std::string& version) const;

 private:
  struct Version {
    std::string meta, artifact, gate;
    int64_t created_ms = 0;
  };
  Card card_of(const std::string& version, const Version& v) const;  // under _mu
  void remember(const std::string& version, std::string meta, std::string artifact, int64_t created_ms);

  mutable std::mutex _mu;
  std::map<std::string, std::string> _meta;  // fleet.models key -> metadata JSON of its newest artifact
  std::string _shadow_artifact;              // newest "anomaly.shadow" artifact
  std::string _active_version, _shadow_version;
  std::map<std::string, Version> _versions;  // version -> what is known of it
};

}  // namespace fleettwin::api
