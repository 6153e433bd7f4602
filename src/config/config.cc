#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/enum_names.h"

namespace fleettwin::config {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

constexpr core::EnumName<ConfigType> kTypeNames[] = {{ConfigType::kInt, "int"},
                                                     {ConfigType::kDouble, "number"},
                                                     {ConfigType::kBool, "bool"},
                                                     {ConfigType::kString, "string"},
                                                     {ConfigType::kDuration, "duration"}};

std::string type_name(ConfigType t) { return std::string(core::name_of(kTypeNames, t, "?")); }

bool parse_bool(const std::string& v, bool& out) {
  const auto l = lower(v);
  if (l == "true" || l == "1" || l == "yes" || l == "on") return out = true, true;
  if (l == "false" || l == "0" || l == "no" || l == "off") return out = false, true;
  return false;
}

std::string fmt_bound(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

[[noreturn]] void throw_key_not_a_name(const std::string& path, const std::string& prefix) {
  throw ConfigError(path + ": a key under '" + prefix + "' is not a name");
}

void flatten(const YAML::Node& node, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out, const std::string& path) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      // A key that is a map or a list (`? [a, b]`, `{a: 1}: 2`) names no key (as<std::string> would throw a
      // yaml-cpp exception instead of an error naming the file).
      if (!kv.first.IsScalar()) throw_key_not_a_name(path, prefix);
      const auto key = kv.first.Scalar();
      std::string name = prefix;
      if (!name.empty()) name += '.';
      name += key;
      flatten(kv.second, name, out, path);
    }
  } else if (node.IsScalar()) {
    out.emplace_back(prefix, node.Scalar());
  } else if (!node.IsNull()) {
    throw ConfigError(path + ": key '" + prefix + "' must be a scalar value");
  }
}

}  // namespace

std::pair<std::string, int> parse_host_port(const std::string& text, const std::string& what) {
  const auto colon = text.rfind(':');
  int port = -1;
  if (colon != std::string::npos && colon + 1 < text.size()) {
    auto [ptr, ec] = std::from_chars(text.data() + colon + 1, text.data() + text.size(), port);
    if (ec != std::errc() || ptr != text.data() + text.size()) port = -1;
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535)
    throw ConfigError(what + " = '" + text + "': expected HOST:PORT, e.g. 127.0.0.1:8081");
  return {text.substr(0, colon), port};
}

int64_t parse_duration_ms(const std::string& text) {
  if (text.empty()) throw ConfigError("empty duration");
  double number = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, number);
  if (ec != std::errc() || !std::isfinite(number) || number < 0)
    throw ConfigError("'" + text + "' is not a duration (e.g. 250ms, 10s, 2m, 1h)");
  const std::string unit(ptr, end);
  double factor;
  if (unit.empty() || unit == "s") {
    factor = 1000;
  } else if (unit == "ms") {
    factor = 1;
  } else if (unit == "m" || unit == "min") {
    factor = 60000;
  } else if (unit == "h") {
    factor = 3600000;
  } else if (unit == "d") {
    factor = 86400000;
  } else {
    throw ConfigError("'" + text + "': unknown duration unit '" + unit + "' (use ms, s, m, h or d)");
  }
  return static_cast<int64_t>(std::llround(number * factor));
}

Config::Config() {
  for (const KeySpec* k : all_keys()) _values[k->name()] = k->default_text();
}

void Config::set_named(const std::string& name, const std::string& text, const std::string& origin) {
  const KeySpec* key = find_key(name);
  if (!key && name.rfind("kafka.", 0) == 0 && name.size() > 6) {
    _passthrough[name] = text;  // librdkafka validates it when the log is created, naming the key
    return;
  }
  if (!key)
    throw ConfigError(origin + ": unknown configuration key '" + name + "' (see `fleettwin config docs`)");
  set(*key, text, origin);
}

void Config::set(const KeySpec& key, const std::string& text, const std::string& origin) {
  const std::string& name = key.name();
  auto fail = [&](const std::string& why) {
    throw ConfigError(origin + ": " + name + " = '" + text + "': " + why);
  };
  double number = 0;
  switch (key.type()) {
    case ConfigType::kInt: {
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || ptr != text.data() + text.size()) fail("expected a whole number");
      number = static_cast<double>(v);
      break;
    }
    case ConfigType::kDouble: {
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(number))
        fail("expected a number");
      break;
    }
    case ConfigType::kBool: {
      bool b;
      if (!parse_bool(text, b)) fail("expected true or false");
      _values[name] = b ? "true" : "false";
      return;
    }
    case ConfigType::kDuration:
      try {
        number = static_cast<double>(parse_duration_ms(text));
      } catch (const ConfigError& e) {
        fail(e.what());
      }
      break;
    case ConfigType::kString:
      _values[name] = text;
      return;
  }
  const bool dur = key.type() == ConfigType::kDuration;
  if (const auto& min = key.min(); min && number < *min)
    fail("below the minimum " + fmt_bound(*min) + (dur ? " ms" : ""));
  if (const auto& max = key.max(); max && number > *max)
    fail("above the maximum " + fmt_bound(*max) + (dur ? " ms" : ""));
  _values[name] = text;
}

void Config::load_yaml(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read the config file");
  std::ostringstream text;
  text << in.rdbuf();
  load_yaml_text(text.str(), path);
}

void Config::load_yaml_text(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(origin + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  std::vector<std::pair<std::string, std::string>> flat;
  flatten(root, "", flat, origin);
  for (const auto& [k, v] : flat) set_named(k, v, origin);
}

void Config::load_env() {
  for (const KeySpec* k : all_keys()) {
    std::string env = "FLEETTWIN_";
    for (char c : k->name()) env += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(c));
    if (const char* v = std::getenv(env.c_str())) set(*k, v, "environment " + env);
  }
}

const std::string& Config::raw(const KeySpec& key) const {
  auto it = _values.find(key.name());
  if (it == _values.end()) throw ConfigError("unknown configuration key '" + key.name() + "'");
  if (_reads) _reads->insert(key.name());
  return it->second;
}

int64_t Config::get(const IntKey& key) const { return std::stoll(raw(key)); }
double Config::get(const DoubleKey& key) const { return std::stod(raw(key)); }
bool Config::get(const BoolKey& key) const { return raw(key) == "true"; }
std::string Config::get(const StringKey& key) const { return raw(key); }
std::chrono::milliseconds Config::get(const DurationKey& key) const {
  return std::chrono::milliseconds(parse_duration_ms(raw(key)));
}
const std::string& Config::text(const KeySpec& key) const { return raw(key); }

std::string Config::docs_markdown() {
  std::string out =
      "# Configuration\n\n"
      "Generated by `fleettwin config docs` from the key table in `src/app/config.cc`; do not edit by "
      "hand.\n\n"
      "Each key is read, lowest precedence first, from its default, the YAML file given with `--config` "
      "(nesting mirrors the dots: `sim: {cars: 100}`), the environment (`FLEETTWIN_` + the key in upper case "
      "with dots as underscores, e.g. `FLEETTWIN_SIM_CARS`), and command-line flags.\n\n"
      "Durations take a unit: `250ms`, `10s`, `2m`, `1h`, `1d` (a plain number means seconds).\n\n"
      "| key | type | default | range | description |\n|---|---|---|---|---|\n";
  for (const KeySpec* k : all_keys()) {
    std::string range;
    const auto& min = k->min();
    const auto& max = k->max();
    if (min || max) {
      const std::string unit = k->type() == ConfigType::kDuration ? " ms" : "";
      range = (min ? fmt_bound(*min) : "") + " .. " + (max ? fmt_bound(*max) : "") + unit;
    }
    out += "| `" + k->name() + "` | " + type_name(k->type()) + " | `" + k->default_text() + "` | " + range +
           " | " + k->description() + " |\n";
  }
  return out;
}

}  // namespace fleettwin::config
