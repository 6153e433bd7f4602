#include "catalog/catalog.h"

#include <array>
#include <cmath>
#include <string>

#include "core/enum_names.h"

namespace fleettwin::catalog {

namespace {

constexpr std::array<core::EnumName<Part>, 7> kPartNames{{
    {Part::kCooling, "cooling"},
    {Part::kBattery, "battery"},
    {Part::kDrivetrain, "drivetrain"},
    {Part::kTyres, "tyres"},
    {Part::kChassis, "chassis"},
    {Part::kElectronics, "electronics"},
    {Part::kBody, "body"},
}};

// The envelope of every message and what the stores keep beside the signals, under any catalog.
constexpr std::array<std::string_view, 9> kReserved{"car",   "ts",    "seq", "lat", "lon",
                                                    "score", "flags", "_id", "id"};

bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }

// Names are identifiers joined by dots (VSS paths): no empty segment, nothing else.
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameLength) return false;
  bool segment_start = true;
  for (char c : s) {
    if (c == '.') {
      if (segment_start) return false;
      segment_start = true;
    } else if (segment_start ? ident_start(c) : ident_char(c)) {
      segment_start = false;
    } else {
      return false;
    }
  }
  return !segment_start;
}

bool valid_catalog_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!ident_char(c) && c != '-' && c != '.') return false;
  }
  return true;
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw CatalogError(where + ": " + what);
}

// Integer signals travel as doubles in memory and as longs on the wire: their bounds must be exact in both.
constexpr double kMaxExactInt = 9007199254740992.0;  // 2^53

void check_signal(const SignalSpec& s, std::size_t i, int catalog_version) {
  const std::string where = "signals[" + std::to_string(i) + "] (" + s.name + ")";
  if (!valid_name(s.name)) {
    fail("signals[" + std::to_string(i) + "].name",
         "\"" + s.name + "\" is not a signal name (identifiers joined by dots, at most 128 characters)");
  }
  if (reserved_name(s.name) || reserved_name(s.field)) fail(where, "\"" + s.name + "\" is a reserved name");
  if (!std::isfinite(s.min) || !std::isfinite(s.max) || s.min > s.max) {
    fail(where, "min and max must be finite numbers with min <= max");
  }
  if (s.type == core::SignalType::kInt &&
      (std::abs(s.min) > kMaxExactInt || std::abs(s.max) > kMaxExactInt)) {
    fail(where, "an int signal's min and max must lie within +-2^53");
  }
  if (s.type == core::SignalType::kBool && (s.min != 0 || s.max != 1)) {
    fail(where, "a bool signal's range is min 0, max 1");
  }
  if (s.aliases.size() > kMaxAliases) fail(where, "more than 16 aliases");
  for (const auto& a : s.aliases) {
    if (!valid_name(a)) fail(where, "alias \"" + a + "\" is not a signal name");
    if (reserved_name(a)) fail(where, "alias \"" + a + "\" is a reserved name");
  }
  if (s.since < 1 || s.since > catalog_version) {
    fail(where,
         "since must lie between 1 and the catalog's version (" + std::to_string(catalog_version) + ")");
  }
  if (s.unit.size() > kMaxNameLength) fail(where, "unit longer than 128 characters");
  if (s.description.size() > 1024) fail(where, "description longer than 1024 characters");
}

}  // namespace

std::string_view to_string(Part p) { return core::name_of(kPartNames, p, "electronics"); }
std::optional<Part> part_from_string(std::string_view s) { return core::parse(kPartNames, s); }

std::string_view to_string(core::SignalType t) {
  switch (t) {
    case core::SignalType::kInt:
      return "int";
    case core::SignalType::kBool:
      return "bool";
    case core::SignalType::kDouble:
      break;
  }
  return "double";
}

std::string field_name(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (!ident_char(c)) c = '_';
  }
  if (!out.empty() && !ident_start(out[0])) out.insert(out.begin(), '_');
  return out;
}

bool reserved_name(std::string_view name) {
  for (auto r : kReserved) {
    if (r == name) return true;
  }
  return false;
}

Catalog::Catalog(std::string name, int version, std::string description, std::vector<SignalSpec> signals)
    : _name(std::move(name)),
      _version(version),
      _description(std::move(description)),
      _signals(std::move(signals)) {
  if (!valid_catalog_name(_name)) {
    throw CatalogError("catalog: \"" + _name + "\" is not a catalog name ([A-Za-z0-9_.-]{1,64})");
  }
  if (_version < 1) throw CatalogError("version: must be 1 or more");
  if (_signals.empty()) throw CatalogError("signals: a catalog needs at least one signal");
  if (_signals.size() > kMaxSignals) throw CatalogError("signals: more than 1024 signals");
  _by_key.reserve(_signals.size() * 3);
  for (std::size_t i = 0; i < _signals.size(); ++i) {
    SignalSpec& s = _signals[i];
    s.field = field_name(s.name);
    check_signal(s, i, _version);
    // A key may stand for one signal only, whichever of name, field or alias it is for each.
    const auto claim = [&](const std::string& key) {
      const auto [it, inserted] = _by_key.emplace(key, i);
      if (!inserted && it->second != i) {
        fail("signals[" + std::to_string(i) + "] (" + s.name + ")",
             "\"" + key + "\" already names signal " + _signals[it->second].name);
      }
    };
    claim(s.name);
    claim(s.field);
    for (const auto& a : s.aliases) claim(a);
  }
}

std::optional<std::size_t> Catalog::find(std::string_view key) const {
  const auto it = _by_key.find(key);
  if (it == _by_key.end()) return std::nullopt;
  return it->second;
}

std::size_t Catalog::index_of(std::string_view name) const {
  if (const auto i = find(name); i && _signals[*i].name == name) return *i;
  throw CatalogError("catalog " + label() + " has no signal \"" + std::string(name) + "\"");
}

std::vector<std::size_t> Catalog::signals_as_of(int version) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < _signals.size(); ++i) {
    if (_signals[i].since <= version) out.push_back(i);
  }
  return out;
}

std::string Catalog::label() const { return _name + " v" + std::to_string(_version); }

std::shared_ptr<const Catalog> load_or_builtin(const std::string& path) {
  if (path.empty()) return builtin();
  return std::make_shared<const Catalog>(load_file(path));
}

}  // namespace fleettwin::catalog
