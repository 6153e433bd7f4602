// Catalog files: YAML in, YAML out (format: docs/catalogs.md).
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "catalog/catalog.h"

namespace fleettwin::catalog {

namespace {

// A catalog is a few hundred lines at most; a bigger file is a mistake, not a catalog.
constexpr std::size_t kMaxFileBytes = std::size_t{4} * 1024 * 1024;

class Reader {
 public:
  explicit Reader(std::string_view origin) : _origin(origin) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& path, const std::string& what) const {
    std::string where(_origin);
    if (at.IsDefined() && at.Mark().line >= 0) where += ":" + std::to_string(at.Mark().line + 1);
    throw CatalogError(where + ": " + path + ": " + what);
  }

  void only_keys(const YAML::Node& map, const std::string& path, const std::set<std::string>& known) const {
    if (!map.IsMap()) fail(map, path, "expected a mapping");
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      // NOLINTNEXTLINE(performance-inefficient-string-concatenation): once, as fail() throws
      if (!known.contains(key)) fail(kv.first, path.empty() ? key : path + "." + key, "unknown key");
    }
  }

  std::string text(const YAML::Node& node, const std::string& path, bool required) const {
    if (!node.IsDefined() || node.IsNull()) {
      if (required) fail(node, path, "missing");
      return {};
    }
    if (!node.IsScalar()) fail(node, path, "expected text");
    return node.as<std::string>();
  }

  double number(const YAML::Node& node, const std::string& path) const {
    if (!node.IsDefined() || node.IsNull()) fail(node, path, "missing");
    double d = 0;
    if (!node.IsScalar() || !YAML::convert<double>::decode(node, d) || !std::isfinite(d)) {
      fail(node, path, "expected a finite number");
    }
    return d;
  }

  int integer(const YAML::Node& node, const std::string& path, int fallback) const {
    if (!node.IsDefined() || node.IsNull()) return fallback;
    int i = 0;
    if (!node.IsScalar() || !YAML::convert<int>::decode(node, i)) fail(node, path, "expected a whole number");
    return i;
  }

  SignalSpec signal(const YAML::Node& node, const std::string& path) const {
    only_keys(node, path, {"name", "type", "unit", "min", "max", "part", "description", "aliases", "since"});
    SignalSpec s;
    s.name = text(node["name"], path + ".name", true);
    const std::string type = text(node["type"], path + ".type", true);
    if (type == "double") {
      s.type = core::SignalType::kDouble;
    } else if (type == "int") {
      s.type = core::SignalType::kInt;
    } else if (type == "bool") {
      s.type = core::SignalType::kBool;
    } else {
      fail(node["type"], path + ".type", "\"" + type + "\" is not one of double, int, bool");
    }
    s.unit = text(node["unit"], path + ".unit", false);
    if (s.type == core::SignalType::kBool) {
      s.min = node["min"].IsDefined() ? number(node["min"], path + ".min") : 0;
      s.max = node["max"].IsDefined() ? number(node["max"], path + ".max") : 1;
    } else {
      s.min = number(node["min"], path + ".min");
      s.max = number(node["max"], path + ".max");
    }
    const std::string part = text(node["part"], path + ".part", true);
    const auto p = part_from_string(part);
    if (!p) {
      fail(node["part"], path + ".part",
           "\"" + part + "\" is not one of cooling, battery, drivetrain, tyres, chassis, electronics, body");
    }
    s.part = *p;
    s.description = text(node["description"], path + ".description", false);
    if (const auto aliases = node["aliases"]; aliases.IsDefined() && !aliases.IsNull()) {
      if (!aliases.IsSequence()) fail(aliases, path + ".aliases", "expected a list of names");
      for (std::size_t i = 0; i < aliases.size(); ++i) {
        s.aliases.push_back(text(aliases[i], path + ".aliases[" + std::to_string(i) + "]", true));
      }
    }
    s.since = integer(node["since"], path + ".since", 1);
    return s;
  }

  Catalog catalog(const YAML::Node& root) const {
    only_keys(root, "", {"catalog", "version", "description", "signals"});
    const std::string name = text(root["catalog"], "catalog", true);
    const int version = integer(root["version"], "version", 0);
    if (version < 1) fail(root["version"], "version", "missing, or not a whole number of 1 or more");
    const auto list = root["signals"];
    if (!list.IsSequence()) fail(list, "signals", "expected a list of signals");
    if (list.size() > kMaxSignals) fail(list, "signals", "more than 1024 signals");
    std::vector<SignalSpec> signals;
    signals.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
      signals.push_back(signal(list[i], "signals[" + std::to_string(i) + "]"));
    }
    try {
      return Catalog(name, version, text(root["description"], "description", false), std::move(signals));
    } catch (const CatalogError& e) {
      throw CatalogError(std::string(_origin) + ": " + e.what());
    }
  }

 private:
  std::string_view _origin;
};

}  // namespace

namespace {

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF). yaml-cpp reads a byte
// that is not as U+FFFD in some places and keeps it in others, so such a text did not survive to_yaml and
// back.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = cp << 6 | (b & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

}  // namespace

Catalog parse_yaml(std::string_view text, std::string_view origin) {
  if (text.size() > kMaxFileBytes) throw CatalogError(std::string(origin) + ": larger than 4 MiB");
  if (!valid_utf8(text)) throw CatalogError(std::string(origin) + ": not UTF-8 text");
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    throw CatalogError(std::string(origin) + ":" + std::to_string(e.mark.line + 1) +
                       ": not valid YAML: " + e.msg);
  }
  try {
    return Reader(origin).catalog(root);
  } catch (const YAML::Exception& e) {  // conversions of malformed nodes
    throw CatalogError(std::string(origin) + ": " + e.what());
  }
}

Catalog load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CatalogError(path + ": cannot read the catalog file");
  std::string text;
  char buf[64 * 1024];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) throw CatalogError(path + ": larger than 4 MiB");
  }
  return parse_yaml(text, path);
}

std::string to_yaml(const Catalog& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "catalog" << YAML::Value << c.name();
  out << YAML::Key << "version" << YAML::Value << c.version();
  if (!c.description().empty()) out << YAML::Key << "description" << YAML::Value << c.description();
  out << YAML::Key << "signals" << YAML::Value << YAML::BeginSeq;
  for (const auto& s : c.signals()) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << s.name;
    out << YAML::Key << "type" << YAML::Value << std::string(to_string(s.type));
    out << YAML::Key << "unit" << YAML::Value << s.unit;
    out << YAML::Key << "min" << YAML::Value << YAML::Precision(17) << s.min;
    out << YAML::Key << "max" << YAML::Value << YAML::Precision(17) << s.max;
    out << YAML::Key << "part" << YAML::Value << std::string(to_string(s.part));
    if (!s.aliases.empty()) out << YAML::Key << "aliases" << YAML::Value << s.aliases;
    if (s.since != 1) out << YAML::Key << "since" << YAML::Value << s.since;
    out << YAML::Key << "description" << YAML::Value << s.description;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace fleettwin::catalog
