#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "core/alert.h"
#include "core/telemetry.h"
#include "core/twin.h"

namespace fleettwin::codec {

// ---- Telemetry (MQTT payloads, fleet.telemetry.raw) ----------------------------------------------------

/// Why a telemetry payload was refused. The strings of to_string() are stable: they are the DLQ's
/// `error.reason` header and a metrics label.
enum class RejectReason : uint8_t {
  kMalformed,  ///< not JSON, not an object, trailing garbage, invalid UTF-8
  kMissingField,
  kWrongType,   ///< e.g. a string where a number belongs, 31.5 for an int signal
  kNonFinite,   ///< NaN/Inf, or a number overflowing a double
  kOutOfRange,  ///< seq < 1, ts < 1, lat/lon off the globe (a signal's implausible reading is kept, flagged)
  kOversized,   ///< larger than the decoder's max_bytes (checked before parsing)
  kBadCarId,    ///< core::valid_car_id is false
  kUnknownField,    ///< only under UnknownFields::kReject
  kDuplicateField,  ///< a key twice, or two names (name, alias) of one signal
};

/// What the decoder does with a payload key the catalog does not know (config key catalog.unknown_fields).
enum class UnknownFields : uint8_t {
  kDrop,    ///< keep the message; the key is reported by unknown_fields() so the caller can count it
  kReject,  ///< refuse the whole message (unknown_field)
};
/// Unknown keys kept per message for unknown_fields(); more are only counted.
inline constexpr std::size_t kMaxUnknownFields = 16;

inline constexpr std::array<RejectReason, 9> kRejectReasons{
    RejectReason::kMalformed, RejectReason::kMissingField, RejectReason::kWrongType,
    RejectReason::kNonFinite, RejectReason::kOutOfRange,   RejectReason::kOversized,
    RejectReason::kBadCarId,  RejectReason::kUnknownField, RejectReason::kDuplicateField,
};

/// "malformed", "missing_field", "wrong_type", "non_finite", "out_of_range", "oversized", "bad_car_id",
/// "unknown_field", "duplicate_field".
std::string_view to_string(RejectReason r);

/// A refused payload: the reason class and a one-line text naming the field and the offending value.
struct DecodeError {
  RejectReason reason = RejectReason::kMalformed;
  std::string detail;
};

/// Bytes simdjson may read past the end of a payload. A std::string whose capacity() exceeds its size()
/// by this much is decoded in place, without a copy.
inline constexpr std::size_t kJsonPadding = 64;
inline constexpr std::size_t kDefaultMaxPayloadBytes = 16384;

/// Validates one JSON telemetry payload (DESIGN.md §4 Telemetry, docs/catalogs.md) against a signal catalog
/// and turns it into core::Telemetry, or says precisely why not. car, ts and seq are required; a position
/// needs both lat and lon; every signal is optional (absent: core::kAbsent), under its catalog name, its
/// identifier form or any alias. A reading outside its plausible range is kept and flagged
/// (Telemetry::out_of_range); a message is refused only when it cannot be trusted as a whole: not JSON,
/// a wrong type, a bad car id, a missing car/ts/seq, a duplicate, an oversized payload, an unknown key under
/// UnknownFields::kReject. Holds a simdjson parser and a padded scratch buffer, sized for 64 KB (or max_bytes
/// if smaller) and grown only by a larger payload, so decoding does not allocate. Not thread-safe: one
/// decoder per thread (the process stage owns one).
class TelemetryDecoder {
 public:
  explicit TelemetryDecoder(std::size_t max_bytes = kDefaultMaxPayloadBytes,
                            std::shared_ptr<const catalog::Catalog> catalog = catalog::builtin(),
                            UnknownFields unknown = UnknownFields::kDrop);
  ~TelemetryDecoder();
  TelemetryDecoder(TelemetryDecoder&&) noexcept;
  TelemetryDecoder& operator=(TelemetryDecoder&&) noexcept;

  /// Decodes `json` into `out` (reusing out.car's storage). On failure returns false, fills `error`, and
  /// leaves `out` partly written. Integer fields (ts, seq, int signals) also accept a whole number written
  /// as a float (31.0, 7e2), as Python's json module writes floats; 31.5 is wrong_type. Copies the payload
  /// into the scratch buffer (~20 ns for 700 bytes).
  bool decode(std::string_view json, core::Telemetry& out, DecodeError& error);
  /// Zero-copy when json.capacity() - json.size() >= kJsonPadding, otherwise as above.
  bool decode(const std::string& json, core::Telemetry& out, DecodeError& error);
  bool decode(const char* json, core::Telemetry& out, DecodeError& error) {
    return decode(std::string_view(json), out, error);
  }
  /// Zero-copy: the caller promises `capacity - json.size() >= kJsonPadding` readable bytes after json.
  bool decode_padded(std::string_view json, std::size_t capacity, core::Telemetry& out, DecodeError& error);

  std::size_t max_bytes() const { return _max_bytes; }
  const catalog::Catalog& catalog() const;
  /// Keys of the last decoded payload that the catalog does not know (at most kMaxUnknownFields; views into
  /// the decoder's buffers, valid until the next decode), and how many there were in all.
  const std::vector<std::string_view>& unknown_fields() const;
  std::size_t unknown_field_count() const;

 private:
  struct Impl;  // keeps simdjson.h (1.2 MB) out of every includer
  std::size_t _max_bytes;
  std::unique_ptr<Impl> _impl;
};

/// Writes telemetry as the compact JSON a car sends: car, ts, seq, the position when present, then the
/// signals present, in catalog order, under the catalog's names or any other names (a simulator speaking a
/// fleet's own names: `sim.catalog`). Int signals print as integers, bools as true/false, doubles in shortest
/// round-trip form, so decoding the output with the same catalog yields exactly the input (flags aside, which
/// the decoder recomputes). Immutable after construction; any thread.
class TelemetryEncoder {
 public:
  /// `names`: one payload name per catalog signal; empty = the catalog's names.
  explicit TelemetryEncoder(std::shared_ptr<const catalog::Catalog> catalog = catalog::builtin(),
                            std::vector<std::string> names = {});
  void encode(const core::Telemetry& t, std::string& out) const;

 private:
  std::shared_ptr<const catalog::Catalog> _catalog;
  std::vector<std::string> _keys;  ///< per signal: `,"name":`
  std::vector<core::SignalType> _types;
};

/// encode_json with the built-in catalog's names.
void encode_json(const core::Telemetry& t, std::string& out);

// ---- Documents: twins, alerts, commands (fleet.twins, stores, REST) ------------------------------------
//
// Round trips are exact (x_from_json(x_to_json(v)) == v) with two documented limits: JSON value texts
// (Twin::desired, Twin::reported_settings, Command::params_json) come back without surrounding whitespace,
// and a text that is not valid JSON is written as a JSON string (never spliced into the document). A twin
// with has_reported == false keeps no reported telemetry except its car id.
// The readers accept unknown fields (newer writers) and treat a missing field as its default, except _id.

/// The DESIGN.md §4 twin document: _id, version, reported {signals, flags, ts, seq, settings}, desired,
/// delta, metadata {signal: ts}, health, connection, location (GeoJSON Point, null before the first
/// report), stats. Signals follow `catalog` (the twin's values are in its order), by name: only those the
/// twin holds (an absent signal is left out of reported, a never-seen one out of metadata), and `flags`,
/// the names of the signals whose value is out of range, left out when none. The reader accepts any
/// catalog name or alias and sizes the twin's signals to `catalog`.
std::string twin_to_json(const core::Twin& twin, const catalog::Catalog& catalog = *catalog::builtin());
bool twin_from_json(std::string_view json, core::Twin& twin, std::string* error,
                    const catalog::Catalog& catalog = *catalog::builtin());

/// The record the twin stage writes to fleet.twins: twin_to_json plus its bookkeeping as the member
/// `pending` {commands: [{id, settings, expires}], open_alerts: [id]}, left out when empty. Other readers
/// of the changelog (the sink, the API, third-party consumers) ignore it.
std::string twin_record_to_json(const core::Twin& twin, const core::TwinPending& pending,
                                const catalog::Catalog& catalog);
/// The `pending` member of a fleet.twins record (empty when it has none).
bool twin_pending_from_json(std::string_view json, core::TwinPending& pending, std::string* error);

/// {_id, car, kind, raised, ts, score, threshold, signals, model_version, acknowledged}.
std::string alert_to_json(const core::Alert& alert);
bool alert_from_json(std::string_view json, core::Alert& alert, std::string* error);

/// {_id, car, name, params (the JSON object itself, null when empty), created, expires, status}.
std::string command_to_json(const core::Command& command);
bool command_from_json(std::string_view json, core::Command& command, std::string* error);

/// {id, car, status, ts, reported {setting: value}, reason}: what a car publishes on fleet/{car}/acks.
std::string command_ack_to_json(const core::CommandAck& ack);
bool command_ack_from_json(std::string_view json, core::CommandAck& ack, std::string* error);

// Commands and the settings they change (DESIGN.md §4 Twin desired/reported/delta):
//   set_speed_limit {"kmh": number 0..250}          -> speed_limit_kmh: number (0 removes the limit)
//   update_firmware {"version": integer 0..100000}  -> firmware_version: integer
//   schedule_service {}                             -> service: true
/// The desired settings `command` sets (name -> JSON text), or false with the reason for an unknown command
/// or bad parameters.
bool command_settings(const core::Command& command, std::map<std::string, std::string>& settings,
                      std::string* error);
/// The command that sets `setting` to the JSON value `value`: fills `command.name` and `params_json`, or
/// returns false with the reason (unknown setting, wrong type, out of range).
bool command_for_setting(std::string_view setting, std::string_view value, core::Command& command,
                         std::string* error);

/// True when `json` is exactly one valid JSON value (any type), optionally surrounded by whitespace. The
/// API checks settings and command parameters with it before storing them as JSON text.
bool valid_json_value(std::string_view json);

}  // namespace fleettwin::codec
