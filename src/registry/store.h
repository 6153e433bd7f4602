#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "registry/protocol.h"
#include "registry/schema.h"

namespace fleettwin::registry {

/// One version of a subject, as GET /subjects/{s}/versions/{v} reports it.
struct SubjectVersion {
  std::string subject;
  int version = 0;
  int32_t id = 0;
  std::string schema;  ///< the text first registered with this id
};

struct RegisterResult {
  int32_t id = 0;
  int version = 0;
  bool created = false;  ///< false: the subject already had this schema
};

/// The state behind EmbeddedRegistry: schemas by global id, subjects with their versions, compatibility
/// levels, and an optional journal file so ids survive restarts. Schemas are identified by their canonical
/// form (AvroSchema::canonical), so whitespace, key order and docs never make a new id or version.
/// Violations are thrown as SchemaRegistryError with Confluent's HTTP status and error code.
/// Thread-safe: called from the HTTP worker threads (and tests) at once; one mutex guards the maps, held
/// only to read or change them: parsing and the compatibility check (polynomial, but a large schema still
/// takes a while) run outside it on a snapshot, and a registration re-checks that nothing changed before
/// it commits (else checks again), so one slow request never holds up the readers.
class SchemaStore {
 public:
  static constexpr int kLatest = -1;

  /// In memory when `journal_path` is empty. Otherwise replays the JSON-lines journal at that path
  /// (creating it and its directory) and appends each change to it, fsynced, before applying it. A torn
  /// last line (a crash during a write) is cut off; any other bad line throws std::runtime_error.
  explicit SchemaStore(std::string journal_path = {});
  ~SchemaStore();
  SchemaStore(const SchemaStore&) = delete;
  SchemaStore& operator=(const SchemaStore&) = delete;

  /// POST /subjects/{s}/versions. The same schema again returns its existing id and version; a schema
  /// known under another subject keeps its global id. 422/42201 when invalid, 409/409 when the subject's
  /// compatibility level refuses it.
  RegisterResult register_schema(std::string_view subject, std::string_view schema);
  /// POST /subjects/{s}: the version of `schema` under `subject`. 404/40401 when the subject is unknown,
  /// 404/40403 when it does not hold this schema, 422/42201 when invalid.
  SubjectVersion lookup(std::string_view subject, std::string_view schema) const;
  /// GET /schemas/ids/{id}: nullopt when unknown.
  std::optional<std::string> schema_by_id(int32_t id) const;
  /// GET /subjects, sorted.
  std::vector<std::string> subjects() const;
  /// GET /subjects/{s}/versions. 404/40401 when the subject is unknown.
  std::vector<int> versions(std::string_view subject) const;
  /// GET /subjects/{s}/versions/{v}; `version` kLatest or >= 1. 404/40401 or 404/40402 when unknown.
  SubjectVersion version(std::string_view subject, int version) const;
  /// POST /compatibility/subjects/{s}/versions[/{v}]: why the subject's compatibility level refuses
  /// `schema` (empty: compatible). Against `version` when given (kLatest allowed), else against every
  /// version the level covers (all for *_TRANSITIVE, the latest otherwise). 404s as version().
  std::vector<std::string> compatibility_problems(std::string_view subject, std::string_view schema,
                                                  std::optional<int> version) const;

  CompatibilityLevel global_compatibility() const;
  void set_global_compatibility(CompatibilityLevel level);
  /// nullopt when the subject has no level of its own (it then follows the global one).
  std::optional<CompatibilityLevel> subject_compatibility(std::string_view subject) const;
  void set_subject_compatibility(std::string_view subject, CompatibilityLevel level);

 private:
  struct Schema {
    std::string text;
    AvroSchema parsed;
  };
  struct Subject {
    std::vector<int32_t> ids;  ///< index = version - 1; versions are never deleted
    std::optional<CompatibilityLevel> level;
  };

  /// What a compatibility check of a subject compares with, copied under the lock and used outside it:
  /// the level and the earlier versions it covers (AvroSchema copies share their nodes).
  struct Against {
    CompatibilityLevel level = CompatibilityLevel::kNone;
    std::vector<std::pair<int, AvroSchema>> versions;  ///< version number and schema
    uint64_t generation = 0;                           ///< _generation when copied
    std::vector<std::string> problems(const AvroSchema& schema) const;
  };

  static AvroSchema parse_or_throw(std::string_view schema);
  const Subject& subject_or_throw(std::string_view subject) const;
  int resolve_version(const Subject& s, int version) const;
  Against against_locked(const Subject& s, std::optional<int> version) const;
  /// Adds `schema` (already checked) as the subject's next version, journal first.
  RegisterResult commit_locked(std::string_view subject, std::string_view schema, const AvroSchema& parsed);
  /// The id and version of `canonical` under `subject` when it holds it already.
  std::optional<RegisterResult> registered_locked(std::string_view subject,
                                                  const std::string& canonical) const;
  void load();
  void apply_line(std::string_view line);
  void append(const std::string& line);

  std::string _path;
  std::FILE* _journal = nullptr;
  mutable std::mutex _mutex;
  std::vector<Schema> _schemas;  ///< index = id - 1
  std::unordered_map<std::string, int32_t> _id_by_canonical;
  std::map<std::string, Subject, std::less<>> _subjects;
  CompatibilityLevel _global = CompatibilityLevel::kBackward;
  uint64_t _generation = 0;  ///< counts changes (registrations, levels): what a check outside the lock saw
};

}  // namespace fleettwin::registry
