#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "catalog/catalog.h"
#include "core/telemetry.h"

namespace fleettwin::codec {
class TelemetryAvro;
}

namespace fleettwin::registry {

class SchemaRegistryClient;
class SignalKeys;
class TelemetryPlan;

/// Reads Avro CarTelemetry records (Confluent wire format) the way a consumer should: by the schema id each
/// record carries, into the Telemetry of the reader's catalog. The first record with a new id fetches that
/// writer schema from the registry: when it is the reader's own (the schema TelemetryAvro generates from the
/// catalog, compared canonically) records are decoded by TelemetryAvro directly, the fast path; any other
/// version of CarTelemetry (an older or newer catalog, another catalog's names with aliases, a third-party
/// writer) is read by Avro schema resolution through a TelemetryPlan built once for that id. A writer schema
/// that cannot be resolved (car, ts or seq missing or of a wrong type, a matched signal of a type the
/// reader's cannot take) is refused with the reason; the id is asked again after kRetryRefusedAfter. An id
/// the registry does not know (404: not yet registered there, or a registry that lost its journal and has
/// not been given the schema again) is asked again sooner, after kRetryUnknownFirst doubling up to
/// kRetryRefusedAfter, so a registry that comes back whole is believed within seconds; a record read while
/// its id is refused is refused too (the stages send it to their DLQ as `unknown_schema`). Later
/// records with a known id cost one hash lookup, none at all for a run of the reader's own id. Without a
/// registry (the embedded mode, where this process registered the schema itself) every record is decoded
/// with the reader's own schema. Used by one stage thread; the client it shares is thread-safe.
class TelemetryReader {
 public:
  static constexpr std::chrono::seconds kRetryRefusedAfter{30};
  static constexpr std::chrono::seconds kRetryUnknownFirst{1};
  using Now = std::function<std::chrono::steady_clock::time_point()>;

  explicit TelemetryReader(std::shared_ptr<SchemaRegistryClient> registry = nullptr,
                           std::shared_ptr<const catalog::Catalog> catalog = catalog::builtin());
  ~TelemetryReader();
  TelemetryReader(TelemetryReader&&) noexcept;
  TelemetryReader& operator=(TelemetryReader&&) noexcept;

  /// Decodes `record` into `out` (sized for the reader's catalog); false with `error` set when the bytes or
  /// the writer schema are not readable. Throws SchemaRegistryError when the registry cannot be asked (the
  /// record may be fine: do not skip it).
  bool read(std::string_view record, core::Telemetry& out, std::string* error);

  const catalog::Catalog& catalog() const;

  /// Why the last read that returned false failed: "unknown_schema" when its writer schema id was refused,
  /// else "undecodable" (the stable DLQ reasons).
  const char* failure_reason() const { return _schema_refused ? "unknown_schema" : "undecodable"; }

  /// Replaces the steady clock the retry times are taken from (tests).
  void set_clock(Now now) { _now = std::move(now); }

 private:
  /// The plan of writer schema `id` (null: the reader's own schema), or false with the reason it is refused.
  bool plan_for(int32_t id, const TelemetryPlan*& plan, std::string* error);
  /// Remembers that `id` is refused until its retry time; `unknown`: the registry did not know it (backoff).
  void refuse(int32_t id, std::string reason, std::string* error, bool unknown = false);

  struct Refusal {
    std::string reason;
    std::chrono::steady_clock::time_point retry_at;
    std::chrono::milliseconds wait{0};  ///< the last wait, doubled on the next refusal of an unknown id
  };

  std::shared_ptr<SchemaRegistryClient> _registry;
  std::shared_ptr<const codec::TelemetryAvro> _own;  ///< the reader catalog's codec: the fast path
  std::string _own_canonical;                        ///< its schema, canonical (with a registry only)
  std::shared_ptr<const SignalKeys> _keys;
  std::unordered_map<int32_t, std::shared_ptr<const TelemetryPlan>>
      _plans;  ///< null: the reader's own schema
  std::unordered_map<int32_t, Refusal> _refused;
  Now _now = [] { return std::chrono::steady_clock::now(); };
  bool _schema_refused = false;  ///< the last failed read failed on its schema id
  int32_t _last_own = -1;        // fast path: consecutive records almost always share one id
};

}  // namespace fleettwin::registry
