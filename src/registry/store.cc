#include "registry/store.h"

#include <simdjson.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "codec/json_writer.h"

namespace fleettwin::registry {

namespace {

namespace dom = simdjson::dom;
namespace errors = registry_errors;

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

bool checks_backward(CompatibilityLevel l) {
  return l == CompatibilityLevel::kBackward || l == CompatibilityLevel::kBackwardTransitive ||
         l == CompatibilityLevel::kFull || l == CompatibilityLevel::kFullTransitive;
}

bool checks_forward(CompatibilityLevel l) {
  return l == CompatibilityLevel::kForward || l == CompatibilityLevel::kForwardTransitive ||
         l == CompatibilityLevel::kFull || l == CompatibilityLevel::kFullTransitive;
}

bool transitive(CompatibilityLevel l) {
  return l == CompatibilityLevel::kBackwardTransitive || l == CompatibilityLevel::kForwardTransitive ||
         l == CompatibilityLevel::kFullTransitive;
}

[[noreturn]] void throw_journal(const std::string& path, std::string_view what) {
  throw std::runtime_error("schema registry journal " + path + ": " + std::string(what));
}

}  // namespace

SchemaStore::SchemaStore(std::string journal_path) : _path(std::move(journal_path)) {
  if (_path.empty()) return;
  load();
  _journal = std::fopen(_path.c_str(), "ab");
  if (!_journal) throw_journal(_path, std::strerror(errno));
}

SchemaStore::~SchemaStore() {
  if (_journal) std::fclose(_journal);
}

AvroSchema SchemaStore::parse_or_throw(std::string_view schema) {
  try {
    return AvroSchema::parse(schema);
  } catch (const std::invalid_argument& e) {
    throw SchemaRegistryError(422, errors::kInvalidSchema, std::string("Invalid schema: ") + e.what());
  }
}

const SchemaStore::Subject& SchemaStore::subject_or_throw(std::string_view subject) const {
  const auto it = _subjects.find(subject);
  if (it == _subjects.end() || it->second.ids.empty()) {
    throw SchemaRegistryError(404, errors::kSubjectNotFound,
                              "Subject '" + std::string(subject) + "' not found.");
  }
  return it->second;
}

int SchemaStore::resolve_version(const Subject& s, int version) const {
  if (version == kLatest) return static_cast<int>(s.ids.size());
  if (version < 1 || static_cast<std::size_t>(version) > s.ids.size()) {
    throw SchemaRegistryError(404, errors::kVersionNotFound,
                              "Version " + std::to_string(version) + " not found.");
  }
  return version;
}

SchemaStore::Against SchemaStore::against_locked(const Subject& s, std::optional<int> version) const {
  Against a;
  a.level = s.level.value_or(_global);
  a.generation = _generation;
  if (a.level == CompatibilityLevel::kNone || s.ids.empty()) return a;
  std::size_t first = s.ids.size() - 1, last = s.ids.size() - 1;
  if (version) {
    first = last = static_cast<std::size_t>(resolve_version(s, *version) - 1);
  } else if (transitive(a.level)) {
    first = 0;
  }
  for (std::size_t i = first; i <= last; ++i)
    a.versions.emplace_back(static_cast<int>(i + 1), _schemas[static_cast<std::size_t>(s.ids[i] - 1)].parsed);
  return a;
}

std::vector<std::string> SchemaStore::Against::problems(const AvroSchema& schema) const {
  std::vector<std::string> out;
  for (const auto& [number, old] : versions) {
    const std::string v = "version " + std::to_string(number) + ": ";
    if (checks_backward(level)) {
      const std::string prefix = v + "new schema cannot read it: ";
      for (auto& p : avro_read_problems(schema, old)) out.push_back(prefix + p);
    }
    if (checks_forward(level)) {
      const std::string prefix = v + "it cannot read the new schema: ";
      for (auto& p : avro_read_problems(old, schema)) out.push_back(prefix + p);
    }
  }
  return out;
}

std::optional<RegisterResult> SchemaStore::registered_locked(std::string_view subject,
                                                             const std::string& canonical) const {
  const auto it = _subjects.find(subject);
  const auto known = _id_by_canonical.find(canonical);
  if (it == _subjects.end() || known == _id_by_canonical.end()) return std::nullopt;
  const auto& ids = it->second.ids;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == known->second) return RegisterResult{known->second, static_cast<int>(i + 1), false};
  }
  return std::nullopt;
}

RegisterResult SchemaStore::register_schema(std::string_view subject, std::string_view schema) {
  const AvroSchema parsed = parse_or_throw(schema);  // outside the lock, as is the check below
  for (;;) {
    Against against;
    {
      std::lock_guard lock(_mutex);
      if (auto done = registered_locked(subject, parsed.canonical())) return *done;
      if (const auto it = _subjects.find(subject); it != _subjects.end()) {
        against = against_locked(it->second, std::nullopt);
      } else {
        against.generation = _generation;
      }
    }
    const auto problems = against.problems(parsed);
    std::lock_guard lock(_mutex);
    // Another registration or level change came first: what was checked may not be what it would commit
    // after. Check again against the new state (each round means someone else's change went through).
    if (_generation != against.generation) continue;
    if (!problems.empty()) {
      throw SchemaRegistryError(
          409, errors::kIncompatibleSchema,
          "Schema being registered is incompatible with an earlier schema for subject \"" +
              std::string(subject) + "\" (" + std::string(to_string(against.level)) +
              "): " + join(problems, "; "));
    }
    return commit_locked(subject, schema, parsed);
  }
}

RegisterResult SchemaStore::commit_locked(std::string_view subject, std::string_view schema,
                                          const AvroSchema& parsed) {
  auto it = _subjects.find(subject);
  const auto known = _id_by_canonical.find(parsed.canonical());
  const int32_t id =
      known != _id_by_canonical.end() ? known->second : static_cast<int32_t>(_schemas.size() + 1);
  const int version = it == _subjects.end() ? 1 : static_cast<int>(it->second.ids.size() + 1);

  std::string line;
  codec::JsonWriter w(line);
  w.begin_object().key("subject").string(subject).key("version").integer(version).key("id").integer(id);
  w.key("schema").string(known != _id_by_canonical.end() ? _schemas[static_cast<std::size_t>(id - 1)].text
                                                         : std::string(schema));
  w.end_object();
  append(line);  // first, so memory never holds what a restart would lose

  if (known == _id_by_canonical.end()) {
    _id_by_canonical.emplace(parsed.canonical(), id);
    _schemas.push_back({std::string(schema), parsed});
  }
  if (it == _subjects.end()) it = _subjects.emplace(std::string(subject), Subject{}).first;
  it->second.ids.push_back(id);
  ++_generation;
  return {id, version, true};
}

SubjectVersion SchemaStore::lookup(std::string_view subject, std::string_view schema) const {
  const AvroSchema parsed = parse_or_throw(schema);
  std::lock_guard lock(_mutex);
  const Subject& s = subject_or_throw(subject);
  if (const auto known = _id_by_canonical.find(parsed.canonical()); known != _id_by_canonical.end()) {
    for (std::size_t i = 0; i < s.ids.size(); ++i) {
      if (s.ids[i] == known->second) {
        return {std::string(subject), static_cast<int>(i + 1), known->second,
                _schemas[static_cast<std::size_t>(known->second - 1)].text};
      }
    }
  }
  throw SchemaRegistryError(404, errors::kSchemaNotFound,
                            "Schema not found under subject '" + std::string(subject) + "'.");
}

std::optional<std::string> SchemaStore::schema_by_id(int32_t id) const {
  std::lock_guard lock(_mutex);
  if (id < 1 || static_cast<std::size_t>(id) > _schemas.size()) return std::nullopt;
  return _schemas[static_cast<std::size_t>(id - 1)].text;
}

std::vector<std::string> SchemaStore::subjects() const {
  std::lock_guard lock(_mutex);
  std::vector<std::string> out;
  for (const auto& [name, s] : _subjects) {
    if (!s.ids.empty()) out.push_back(name);  // a subject with only a config has no schema yet
  }
  return out;
}

std::vector<int> SchemaStore::versions(std::string_view subject) const {
  std::lock_guard lock(_mutex);
  const Subject& s = subject_or_throw(subject);
  std::vector<int> out(s.ids.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int>(i + 1);
  return out;
}

SubjectVersion SchemaStore::version(std::string_view subject, int version) const {
  std::lock_guard lock(_mutex);
  const Subject& s = subject_or_throw(subject);
  const int v = resolve_version(s, version);
  const int32_t id = s.ids[static_cast<std::size_t>(v - 1)];
  return {std::string(subject), v, id, _schemas[static_cast<std::size_t>(id - 1)].text};
}

std::vector<std::string> SchemaStore::compatibility_problems(std::string_view subject,
                                                             std::string_view schema,
                                                             std::optional<int> version) const {
  const AvroSchema parsed = parse_or_throw(schema);
  Against against;
  {
    std::lock_guard lock(_mutex);
    against = against_locked(subject_or_throw(subject), version);
  }
  return against.problems(parsed);
}

CompatibilityLevel SchemaStore::global_compatibility() const {
  std::lock_guard lock(_mutex);
  return _global;
}

void SchemaStore::set_global_compatibility(CompatibilityLevel level) {
  std::string line;
  codec::JsonWriter(line).begin_object().key("config").string(to_string(level)).end_object();
  std::lock_guard lock(_mutex);
  append(line);
  _global = level;
  ++_generation;
}

std::optional<CompatibilityLevel> SchemaStore::subject_compatibility(std::string_view subject) const {
  std::lock_guard lock(_mutex);
  const auto it = _subjects.find(subject);
  return it == _subjects.end() ? std::nullopt : it->second.level;
}

void SchemaStore::set_subject_compatibility(std::string_view subject, CompatibilityLevel level) {
  std::string line;
  codec::JsonWriter(line)
      .begin_object()
      .key("subject")
      .string(subject)
      .key("config")
      .string(to_string(level))
      .end_object();
  std::lock_guard lock(_mutex);
  append(line);
  auto it = _subjects.find(subject);
  if (it == _subjects.end()) it = _subjects.emplace(std::string(subject), Subject{}).first;
  it->second.level = level;
  ++_generation;
}

// ---- journal -------------------------------------------------------------------------------------------
//
// One JSON object per line: {"subject","version","id","schema"} for a registration, {"config"} or
// {"subject","config"} for a compatibility level. Append-only and replayed in order; small (one line per
// schema version), so it is never compacted.

void SchemaStore::load() {
  const std::filesystem::path p(_path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ifstream in(_path, std::ios::binary);
  if (!in) return;  // a new registry
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::size_t start = 0;
  std::size_t line_no = 1;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      // Every write ends with '\n': text after the last one is a write the process did not finish.
      std::filesystem::resize_file(p, start);
      break;
    }
    try {
      if (end > start) apply_line(std::string_view(text).substr(start, end - start));
    } catch (const std::exception& e) {
      throw_journal(_path, "line " + std::to_string(line_no) + ": " + e.what());
    }
    start = end + 1;
    ++line_no;
  }
}

void SchemaStore::apply_line(std::string_view line) {
  dom::parser parser;
  dom::object o;
  const simdjson::padded_string padded(line);
  if (parser.parse(padded).get(o) != simdjson::SUCCESS) throw std::runtime_error("not a JSON object");
  std::string_view subject, level_text, schema;
  const bool has_subject = o["subject"].get(subject) == simdjson::SUCCESS;
  if (o["config"].get(level_text) == simdjson::SUCCESS) {
    const auto level = parse_compatibility_level(level_text);
    if (!level) throw std::runtime_error("unknown compatibility level");
    if (has_subject) {
      _subjects[std::string(subject)].level = level;
    } else {
      _global = *level;
    }
    return;
  }
  int64_t version = 0, id = 0;
  if (!has_subject || o["version"].get(version) != simdjson::SUCCESS ||
      o["id"].get(id) != simdjson::SUCCESS || o["schema"].get(schema) != simdjson::SUCCESS) {
    throw std::runtime_error("neither a registration nor a config");
  }
  AvroSchema parsed = AvroSchema::parse(schema);
  if (id >= 1 && static_cast<std::size_t>(id) <= _schemas.size()) {
    if (_schemas[static_cast<std::size_t>(id - 1)].parsed.canonical() != parsed.canonical()) {
      throw std::runtime_error("id " + std::to_string(id) + " holds another schema");
    }
  } else if (static_cast<std::size_t>(id) == _schemas.size() + 1) {
    _id_by_canonical.emplace(parsed.canonical(), static_cast<int32_t>(id));
    _schemas.push_back({std::string(schema), std::move(parsed)});
  } else {
    throw std::runtime_error("id " + std::to_string(id) + " out of sequence");
  }
  Subject& s = _subjects[std::string(subject)];
  if (static_cast<std::size_t>(version) != s.ids.size() + 1) {
    throw std::runtime_error("version " + std::to_string(version) + " out of sequence");
  }
  s.ids.push_back(static_cast<int32_t>(id));
}

void SchemaStore::append(const std::string& line) {
  if (_path.empty()) return;
  if (!_journal) {
    throw SchemaRegistryError(500, errors::kStoreError,
                              "the registry journal " + _path + " failed earlier; restart to recover it");
  }
  const bool ok = std::fwrite(line.data(), 1, line.size(), _journal) == line.size() &&
                  std::fputc('\n', _journal) != EOF && std::fflush(_journal) == 0 &&
                  ::fsync(fileno(_journal)) == 0;
  if (!ok) {
    // A partly written line would glue itself to the next one; stop writing, and the restart's load()
    // cuts the torn tail.
    const int err = errno;
    std::fclose(_journal);
    _journal = nullptr;
    errno = err;
    throw SchemaRegistryError(500, errors::kStoreError,
                              "cannot write the registry journal " + _path + ": " + std::strerror(errno));
  }
}

}  // namespace fleettwin::registry
