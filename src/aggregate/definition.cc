// Aggregate definitions: YAML in (an operator's configuration, so outside input: every field checked).
#include "aggregate/definition.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <set>
#include <utility>

namespace fleettwin::aggregate {

namespace {

constexpr std::size_t kMaxTextBytes = std::size_t{1024} * 1024;
constexpr std::size_t kMaxNameLength = 64;

constexpr std::array<std::pair<Function, std::string_view>, 9> kFunctionNames{{
    {Function::kCount, "count"},
    {Function::kMin, "min"},
    {Function::kMax, "max"},
    {Function::kMean, "mean"},
    {Function::kSum, "sum"},
    {Function::kP50, "p50"},
    {Function::kP95, "p95"},
    {Function::kP99, "p99"},
    {Function::kLast, "last"},
}};

constexpr std::string_view kDefaultYaml =
    R"(# The shipped aggregates (cardata-v1 names). Durations: milliseconds, or a number with ms, s, m, h, d.
aggregates:
  # The reference's streaming query: events per car per 5 minutes (silent cars show as low counts).
  - name: events_5m
    group: car
    window: 5m
    grace: 30s
  # An hourly summary of the main signals per car.
  - name: summary_1h
    group: car
    window: 1h
    grace: 1m
    signals:
      speed: [mean, max]
      coolant_temp: [max, p95]
      engine_vibration_amplitude: [p95]
      battery_voltage: [min, mean]
)";

bool valid_name(std::string_view s) {
  return !s.empty() && s.size() <= kMaxNameLength && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

class Reader {
 public:
  Reader(std::string_view origin, const catalog::Catalog& catalog) : _origin(origin), _catalog(catalog) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& path, const std::string& what) const {
    std::string where(_origin);
    if (at.IsDefined() && at.Mark().line >= 0) where += ":" + std::to_string(at.Mark().line + 1);
    throw DefinitionError(where + ": " + path + ": " + what);
  }

  void only_keys(const YAML::Node& map, const std::string& path, const std::set<std::string>& known) const {
    if (!map.IsDefined() || !map.IsMap()) fail(map, path, "expected a mapping");
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) fail(kv.first, path, "expected text keys");
      const auto key = kv.first.as<std::string>();
      // NOLINTNEXTLINE(performance-inefficient-string-concatenation): once, as fail() throws
      if (!known.contains(key)) fail(kv.first, path + "." + key, "unknown key");
    }
  }

  std::string text(const YAML::Node& node, const std::string& path) const {
    if (!node.IsDefined() || node.IsNull()) fail(node, path, "missing");
    if (!node.IsScalar()) fail(node, path, "expected text");
    return node.as<std::string>();
  }

  int64_t duration(const YAML::Node& node, const std::string& path, int64_t fallback) const {
    if (!node.IsDefined() || node.IsNull()) return fallback;
    if (!node.IsScalar()) fail(node, path, "expected a duration");
    try {
      return parse_duration(node.Scalar(), path);
    } catch (const DefinitionError& e) {
      fail(node, path, e.what());
    }
  }

  void window(const YAML::Node& node, const std::string& path, Definition& d) const {
    if (node.IsDefined() && node.IsMap()) {
      only_keys(node, path, {"size", "advance"});
      d.size_ms = duration(node["size"], path + ".size", 0);
      d.advance_ms = duration(node["advance"], path + ".advance", d.size_ms);
    } else {
      d.size_ms = duration(node, path, 0);
      d.advance_ms = d.size_ms;
    }
    if (d.size_ms <= 0) fail(node, path, "missing, or not a positive duration");
    if (d.advance_ms <= 0 || d.advance_ms > d.size_ms) {
      fail(node, path + ".advance", "must be positive and at most the size");
    }
    if (d.size_ms % d.advance_ms != 0) fail(node, path + ".advance", "must divide the size");
    if (d.size_ms / d.advance_ms > kMaxWindowsPerEvent) {
      fail(node, path + ".advance",
           "size / advance is more than 64 (each event would be in too many windows)");
    }
  }

  void grouping(const YAML::Node& node, const std::string& path, Definition& d) const {
    const std::string g = text(node["group"], path + ".group");
    if (g == "car") {
      d.grouping = Grouping::kCar;
    } else if (g == "fleet") {
      d.grouping = Grouping::kFleet;
    } else if (g == "attribute") {
      d.grouping = Grouping::kAttribute;
      d.attribute = text(node["attribute"], path + ".attribute");
      if (!valid_name(d.attribute)) fail(node["attribute"], path + ".attribute", "expected [a-z0-9_]{1,64}");
    } else {
      fail(node["group"], path + ".group", "\"" + g + "\" is not one of car, fleet, attribute");
    }
    if (d.grouping != Grouping::kAttribute && node["attribute"].IsDefined()) {
      fail(node["attribute"], path + ".attribute", "only with group: attribute");
    }
  }

  std::vector<Function> functions(const YAML::Node& node, const std::string& path) const {
    if (!node.IsSequence() || node.size() == 0) fail(node, path, "expected a non-empty list of functions");
    std::vector<Function> out;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      const std::string name = text(node[i], item_path);
      const auto* it = std::find_if(kFunctionNames.begin(), kFunctionNames.end(),
                                    [&](const auto& p) { return p.second == name; });
      if (it == kFunctionNames.end()) {
        fail(node[i], item_path,
             "\"" + name + "\" is not one of count, min, max, mean, sum, p50, p95, p99, last");
      }
      if (std::find(out.begin(), out.end(), it->first) != out.end()) fail(node[i], item_path, "listed twice");
      out.push_back(it->first);
    }
    return out;
  }

  void signals(const YAML::Node& node, const std::string& path, Definition& d) const {
    if (!node.IsDefined() || node.IsNull()) return;
    if (!node.IsMap()) fail(node, path, "expected a mapping of signal to functions");
    if (node.size() > kMaxSignalsPerDefinition) fail(node, path, "more than 64 signals");
    for (const auto& kv : node) {
      const std::string key = text(kv.first, path);
      std::string sig_path = path;
      sig_path += '.';
      sig_path += key;
      const auto index = _catalog.find(key);
      if (!index) fail(kv.first, sig_path, "not a signal of the catalog " + _catalog.label());
      const auto same = [&](const SignalFunctions& s) { return s.signal == *index; };
      if (std::any_of(d.signals.begin(), d.signals.end(), same)) fail(kv.first, sig_path, "listed twice");
      d.signals.push_back({*index, _catalog[*index].name, functions(kv.second, sig_path)});
    }
  }

  Definition definition(const YAML::Node& node, const std::string& path) const {
    only_keys(node, path, {"name", "group", "attribute", "window", "grace", "allowed_lateness", "signals"});
    Definition d;
    d.name = text(node["name"], path + ".name");
    if (!valid_name(d.name)) fail(node["name"], path + ".name", "expected [a-z0-9_]{1,64}");
    grouping(node, path, d);
    window(node["window"], path + ".window", d);
    d.grace_ms = duration(node["grace"], path + ".grace", 0);
    if (d.grace_ms > kMaxAllowedLateness) fail(node["grace"], path + ".grace", "more than 30 days");
    // A car's own windows are final when they close unless the definition says otherwise: its events come
    // in seq order, so only a clock going backwards could still change one (docs/architecture.md).
    d.allowed_lateness_ms = duration(node["allowed_lateness"], path + ".allowed_lateness",
                                     d.grouping == Grouping::kCar ? d.grace_ms : kDefaultAllowedLateness);
    if (d.allowed_lateness_ms > kMaxAllowedLateness) {
      fail(node["allowed_lateness"], path + ".allowed_lateness", "more than 30 days");
    }
    if (d.grace_ms > d.allowed_lateness_ms)
      fail(node["grace"], path + ".grace", "more than the allowed lateness");
    signals(node["signals"], path + ".signals", d);
    return d;
  }

  std::vector<Definition> definitions(const YAML::Node& root) const {
    only_keys(root, "", {"aggregates"});
    const auto list = root["aggregates"];
    if (!list.IsDefined() || !list.IsSequence()) fail(list, "aggregates", "expected a list of aggregates");
    if (list.size() > kMaxDefinitions) fail(list, "aggregates", "more than 64 aggregates");
    std::vector<Definition> out;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string path = "aggregates[" + std::to_string(i) + "]";
      auto d = definition(list[i], path);
      const auto same = [&](const Definition& o) { return o.name == d.name; };
      if (std::any_of(out.begin(), out.end(), same))
        fail(list[i]["name"], path + ".name", "\"" + d.name + "\" twice");
      out.push_back(std::move(d));
    }
    return out;
  }

 private:
  std::string_view _origin;
  const catalog::Catalog& _catalog;
};

}  // namespace

std::string_view function_name(Function f) {
  for (const auto& [fn, name] : kFunctionNames) {
    if (fn == f) return name;
  }
  return "?";
}

std::vector<std::string> Definition::columns() const {
  std::vector<std::string> out;
  for (const auto& s : signals) {
    for (const auto f : s.functions) out.push_back(s.name + "_" + std::string(function_name(f)));
  }
  return out;
}

int64_t parse_duration(std::string_view text, std::string_view field) {
  const auto bad = [&](std::string_view why) {
    return DefinitionError(std::string(field) + ": \"" + std::string(text.substr(0, 64)) + "\" " +
                           std::string(why));
  };
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end == text.data()) throw bad("is not a duration (e.g. 250, 30s, 5m, 1h, 7d)");
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  int64_t scale = 0;
  if (unit.empty() || unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = int64_t{60} * 1000;
  } else if (unit == "h") {
    scale = kMsPerHour;
  } else if (unit == "d") {
    scale = kMsPerDay;
  } else {
    throw bad("has a unit other than ms, s, m, h, d");
  }
  if (n < 0) throw bad("is negative");
  if (n > kMaxDuration / scale) throw bad("is more than 400 days");
  return n * scale;
}

std::vector<Definition> parse_yaml(std::string_view text, std::string_view origin,
                                   const catalog::Catalog& catalog) {
  if (text.size() > kMaxTextBytes) throw DefinitionError(std::string(origin) + ": more than 1 MiB");
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw DefinitionError(std::string(origin) + ": not YAML: " + e.what());
  }
  try {
    return Reader(origin, catalog).definitions(root);
  } catch (const YAML::Exception& e) {
    throw DefinitionError(std::string(origin) + ": " + e.what());
  }
}

std::string_view default_yaml() { return kDefaultYaml; }

std::vector<Definition> defaults(const catalog::Catalog& catalog) {
  return parse_yaml(kDefaultYaml, "default aggregates", catalog);
}

}  // namespace fleettwin::aggregate
