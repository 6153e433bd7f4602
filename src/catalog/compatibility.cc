#include "catalog/compatibility.h"

#include <array>
#include <sstream>

#include "core/enum_names.h"

namespace fleettwin::catalog {

namespace {

constexpr std::array<core::EnumName<Change::Kind>, 7> kKindNames{{
    {Change::Kind::kAdded, "added"},
    {Change::Kind::kRemoved, "removed"},
    {Change::Kind::kRenamed, "renamed"},
    {Change::Kind::kTypeChanged, "type changed"},
    {Change::Kind::kUnitChanged, "unit changed"},
    {Change::Kind::kRangeChanged, "range changed"},
    {Change::Kind::kDescribed, "described"},
}};

std::string number(double d) {
  std::ostringstream s;
  s << d;
  return s.str();
}

// The newer catalog's signal that reads what the older one wrote under `old`: the same name, or one that
// lists the old name as an alias (a rename).
const SignalSpec* successor(const Catalog& newer, const SignalSpec& old, bool& renamed) {
  renamed = false;
  for (const auto& s : newer.signals()) {
    if (s.name == old.name) return &s;
  }
  for (const auto& s : newer.signals()) {
    for (const auto& a : s.aliases) {
      if (a == old.name) {
        renamed = true;
        return &s;
      }
    }
  }
  return nullptr;
}

// `renamed`: the alias that names the old signal is the rename itself, not a change to report again.
void compare_signal(const SignalSpec& o, const SignalSpec& n, bool renamed, std::vector<Change>& out) {
  if (o.type != n.type) {
    // Avro promotes int to double when resolving a writer's schema; nothing else converts.
    const bool ok = o.type == core::SignalType::kInt && n.type == core::SignalType::kDouble;
    out.push_back(
        {Change::Kind::kTypeChanged, n.name,
         std::string(to_string(o.type)) + " -> " + std::string(to_string(n.type)) +
             (ok ? " (Avro promotes int to double)" : " (older records cannot be read as the new type)"),
         ok});
  }
  if (o.unit != n.unit) {
    out.push_back({Change::Kind::kUnitChanged, n.name,
                   "\"" + o.unit + "\" -> \"" + n.unit +
                       "\": one name would mean two quantities in the history; add a new signal instead",
                   false});
  }
  if (o.min != n.min || o.max != n.max) {
    out.push_back(
        {Change::Kind::kRangeChanged, n.name,
         "[" + number(o.min) + ", " + number(o.max) + "] -> [" + number(n.min) + ", " + number(n.max) + "]",
         true});
  }
  std::vector<std::string> new_aliases = n.aliases;
  if (renamed) std::erase(new_aliases, o.name);
  const bool aliases_changed = o.aliases != new_aliases;
  if (o.part != n.part || o.description != n.description || aliases_changed) {
    std::string what;
    if (o.part != n.part)
      what += "part " + std::string(to_string(o.part)) + " -> " + std::string(to_string(n.part));
    if (o.description != n.description) what += std::string(what.empty() ? "" : ", ") + "description";
    if (aliases_changed) what += std::string(what.empty() ? "" : ", ") + "aliases";
    out.push_back({Change::Kind::kDescribed, n.name, what, true});
  }
}

}  // namespace

std::string_view to_string(Change::Kind k) { return core::name_of(kKindNames, k, "changed"); }

bool Compatibility::compatible() const {
  for (const auto& c : changes) {
    if (!c.compatible) return false;
  }
  return true;
}

std::string Compatibility::report() const {
  std::string out;
  for (const auto& c : changes) {
    out += c.compatible ? "  " : "! ";
    out += std::string(to_string(c.kind)) + ": " + c.signal;
    if (!c.detail.empty()) out += " (" + c.detail + ")";
    out += '\n';
  }
  if (changes.empty()) out += "  no change to any signal\n";
  out += compatible()
             ? "compatible: readers on the new catalog read everything written under the old one\n"
             : "INCOMPATIBLE: records written under the old catalog cannot be read under the new one\n";
  return out;
}

Compatibility compare(const Catalog& older, const Catalog& newer) {
  Compatibility result;
  std::vector<bool> matched(newer.size(), false);
  for (const auto& o : older.signals()) {
    bool renamed = false;
    const SignalSpec* n = successor(newer, o, renamed);
    if (!n) {
      result.changes.push_back(
          {Change::Kind::kRemoved, o.name, "newer readers skip it; its history stays in the stores", true});
      continue;
    }
    matched[static_cast<std::size_t>(n - newer.signals().data())] = true;
    if (renamed) result.changes.push_back({Change::Kind::kRenamed, n->name, "was " + o.name, true});
    compare_signal(o, *n, renamed, result.changes);
  }
  for (std::size_t i = 0; i < newer.size(); ++i) {
    if (!matched[i]) {
      result.changes.push_back(
          {Change::Kind::kAdded, newer[i].name, "optional: records without it read it as absent", true});
    }
  }
  return result;
}

}  // namespace fleettwin::catalog
