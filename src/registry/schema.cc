#include "registry/schema.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <span>
#include <stdexcept>
#include <utility>

#include "codec/avro.h"
#include "codec/json_writer.h"
#include "core/enum_names.h"

namespace fleettwin::registry {

namespace {

namespace dom = simdjson::dom;

// The primitives come first: a type name in a schema may only be one of them (the others are written as
// objects), so primitive_kind reads just those rows.
constexpr std::size_t kPrimitiveCount = 8;
constexpr core::EnumName<AvroKind> kKindNames[] = {
    {AvroKind::kNull, "null"},   {AvroKind::kBoolean, "boolean"}, {AvroKind::kInt, "int"},
    {AvroKind::kLong, "long"},   {AvroKind::kFloat, "float"},     {AvroKind::kDouble, "double"},
    {AvroKind::kBytes, "bytes"}, {AvroKind::kString, "string"},   {AvroKind::kRecord, "record"},
    {AvroKind::kEnum, "enum"},   {AvroKind::kArray, "array"},     {AvroKind::kMap, "map"},
    {AvroKind::kFixed, "fixed"}, {AvroKind::kUnion, "union"}};

std::optional<AvroKind> primitive_kind(std::string_view name) {
  return core::parse(std::span(kKindNames).first<kPrimitiveCount>(), name);
}

[[noreturn]] void invalid(std::string_view where, std::string_view what) {
  std::string m(where);
  if (!m.empty()) m += ": ";
  m += what;
  throw std::invalid_argument(m);
}

bool valid_name(std::string_view n) {
  if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

bool valid_full_name(std::string_view n) {
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = n.find('.', start);
    if (!valid_name(n.substr(start, dot == std::string_view::npos ? dot : dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string_view namespace_of(std::string_view full) {
  const std::size_t dot = full.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : full.substr(0, dot);
}

std::string qualify(std::string_view name, std::string_view ns) {
  if (name.find('.') != std::string_view::npos || ns.empty()) return std::string(name);
  std::string out(ns);
  out += '.';
  out += name;
  return out;
}

// Appends {"k":v,...} for the (key, value) pairs of `members`, in their order; `value(v)` appends each value.
template <typename Members, typename F>
void append_object(std::string& out, const Members& members, F&& value) {
  out.push_back('{');
  bool first = true;
  for (const auto& [k, v] : members) {
    if (!first) out.push_back(',');
    first = false;
    codec::append_json_string(out, k);
    out.push_back(':');
    value(v);
  }
  out.push_back('}');
}

// Compact JSON with object keys sorted, so formatting and key order never change a default's text.
void canonical_json(dom::element e, std::string& out) {
  codec::JsonWriter w(out);
  switch (e.type()) {
    case dom::element_type::ARRAY: {
      out.push_back('[');
      bool first = true;
      for (dom::element v : dom::array(e)) {
        if (!first) out.push_back(',');
        first = false;
        canonical_json(v, out);
      }
      out.push_back(']');
      break;
    }
    case dom::element_type::OBJECT: {
      std::map<std::string_view, dom::element> sorted;
      for (auto [k, v] : dom::object(e)) sorted.emplace(k, v);
      append_object(out, sorted, [&out](dom::element v) { canonical_json(v, out); });
      break;
    }
    case dom::element_type::INT64:
      codec::append_json_int(out, int64_t(e));
      break;
    case dom::element_type::UINT64:
      out += std::to_string(uint64_t(e));
      break;
    case dom::element_type::DOUBLE:
      codec::append_json_double(out, double(e));
      break;
    case dom::element_type::STRING:
      codec::append_json_string(out, std::string_view(e));
      break;
    case dom::element_type::BOOL:
      out += bool(e) ? "true" : "false";
      break;
    case dom::element_type::NULL_VALUE:
      out += "null";
      break;
  }
}

// Writes an object from (key, canonical value) pairs in key order.
std::string canonical_object(const std::map<std::string, std::string>& members) {
  std::string out;
  append_object(out, members, [&out](const std::string& v) { out += v; });
  return out;
}

std::string json_quoted(std::string_view s) {
  std::string out;
  codec::append_json_string(out, s);
  return out;
}

bool is_whole_number(dom::element e) {
  return e.type() == dom::element_type::INT64 || e.type() == dom::element_type::UINT64;
}

bool is_number(dom::element e) { return is_whole_number(e) || e.type() == dom::element_type::DOUBLE; }

// Does `v` fit a value of type `t`? Avro spec "Complex Types / Records": the JSON encoding of defaults.
bool valid_default(const AvroNode* t, dom::element v, int depth) {
  if (depth > kMaxSchemaDepth) return false;
  switch (t->kind) {
    case AvroKind::kNull:
      return v.type() == dom::element_type::NULL_VALUE;
    case AvroKind::kBoolean:
      return v.type() == dom::element_type::BOOL;
    case AvroKind::kInt:
      if (v.type() == dom::element_type::INT64) {
        const int64_t i = int64_t(v);
        return i >= INT32_MIN && i <= INT32_MAX;
      }
      return false;
    case AvroKind::kLong:
      return v.type() == dom::element_type::INT64;
    case AvroKind::kFloat:
    case AvroKind::kDouble:
      return is_number(v);
    case AvroKind::kBytes:
    case AvroKind::kString:
    case AvroKind::kFixed:  // code points 0-255; length not checked
      return v.type() == dom::element_type::STRING;
    case AvroKind::kEnum:
      return v.type() == dom::element_type::STRING &&
             std::find(t->symbols.begin(), t->symbols.end(), std::string_view(v)) != t->symbols.end();
    case AvroKind::kArray:
      if (v.type() != dom::element_type::ARRAY) return false;
      for (dom::element item : dom::array(v)) {
        if (!valid_default(t->items, item, depth + 1)) return false;
      }
      return true;
    case AvroKind::kMap:
      if (v.type() != dom::element_type::OBJECT) return false;
      for (auto [k, item] : dom::object(v)) {
        if (!valid_default(t->items, item, depth + 1)) return false;
      }
      return true;
    case AvroKind::kRecord: {
      if (v.type() != dom::element_type::OBJECT) return false;
      const dom::object o(v);
      for (const auto& f : t->fields) {
        dom::element fv;
        if (o.at_key(f.name).get(fv) != simdjson::SUCCESS) {
          if (!f.has_default) return false;
        } else if (!valid_default(f.type, fv, depth + 1)) {
          return false;
        }
      }
      return true;
    }
    case AvroKind::kUnion:
      return std::any_of(t->branches.begin(), t->branches.end(),
                         [&](const AvroNode* b) { return valid_default(b, v, depth + 1); });
  }
  return false;
}

std::string optional_string(dom::object o, std::string_view key, std::string_view where) {
  dom::element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS) return {};
  if (e.type() != dom::element_type::STRING) invalid(where, "\"" + std::string(key) + "\" is not a string");
  return std::string(std::string_view(e));
}

std::vector<std::string> string_list(dom::element e, std::string_view what, std::string_view where) {
  if (e.type() != dom::element_type::ARRAY) invalid(where, std::string(what) + " is not an array");
  std::vector<std::string> out;
  for (dom::element s : dom::array(e)) {
    if (s.type() != dom::element_type::STRING) invalid(where, std::string(what) + " holds a non-string");
    out.emplace_back(std::string_view(s));
  }
  return out;
}

}  // namespace

bool is_named(AvroKind k) { return k == AvroKind::kRecord || k == AvroKind::kEnum || k == AvroKind::kFixed; }

std::string_view to_string(AvroKind kind) { return core::name_of(kKindNames, kind, "union"); }

std::string_view AvroNode::short_name() const {
  const std::size_t dot = name.rfind('.');
  return dot == std::string::npos ? std::string_view(name) : std::string_view(name).substr(dot + 1);
}

struct AvroSchema::State {
  std::deque<AvroNode> nodes;  // a deque: nodes point at each other, so they must never move
  const AvroNode* root = nullptr;
  std::string canonical;
};

namespace {

/// Builds the node graph and the canonical text in one walk over simdjson's DOM. One per parse() call.
class SchemaParser {
 public:
  explicit SchemaParser(std::deque<AvroNode>& nodes) : _nodes(nodes) {}

  const AvroNode* parse(dom::element e, const std::string& ns, std::string& canon, const std::string& where,
                        int depth) {
    if (depth > kMaxSchemaDepth)
      invalid(where, "nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
    switch (e.type()) {
      case dom::element_type::STRING:
        return parse_name(std::string_view(e), ns, canon, where);
      case dom::element_type::ARRAY:
        return parse_union(dom::array(e), ns, canon, where, depth);
      case dom::element_type::OBJECT:
        return parse_object(dom::object(e), ns, canon, where, depth);
      default:
        invalid(where, "a schema is a string, an object or an array");
    }
  }

  void check_defaults() {
    for (const auto& [record, index, value, where] : _defaults) {
      const AvroNode::Field& field = record->fields[index];
      if (!valid_default(field.type, value, 0)) {
        std::string v;
        canonical_json(value, v);
        invalid(where, "default " + v + " does not match the field's type " +
                           std::string(to_string(field.type->kind)));
      }
    }
  }

 private:
  AvroNode& make(AvroKind kind) {
    AvroNode& n = _nodes.emplace_back();
    n.kind = kind;
    return n;
  }

  const AvroNode* parse_name(std::string_view name, const std::string& ns, std::string& canon,
                             const std::string& where) {
    if (auto k = primitive_kind(name)) {
      canon += json_quoted(name);
      return &make(*k);
    }
    // An unqualified reference resolves in the enclosing namespace first, then in the null namespace.
    for (const std::string& full : {qualify(name, ns), std::string(name)}) {
      if (auto it = _named.find(full); it != _named.end()) {
        canon += json_quoted(full);
        return it->second;
      }
    }
    invalid(where, "unknown type \"" + std::string(name) + "\"");
  }

  const AvroNode* parse_union(dom::array branches, const std::string& ns, std::string& canon,
                              const std::string& where, int depth) {
    AvroNode& u = make(AvroKind::kUnion);
    std::set<std::string> seen;
    canon += '[';
    std::size_t i = 0;
    for (dom::element b : branches) {
      if (i > 0) canon += ',';
      const AvroNode* n = parse(b, ns, canon, where + "[" + std::to_string(i) + "]", depth + 1);
      if (n->kind == AvroKind::kUnion) invalid(where, "a union may not directly contain a union");
      const std::string key = is_named(n->kind) ? n->name : std::string(to_string(n->kind));
      if (!seen.insert(key).second) invalid(where, "union holds " + key + " twice");
      u.branches.push_back(n);
      ++i;
    }
    canon += ']';
    return &u;
  }

  const AvroNode* parse_object(dom::object o, const std::string& ns, std::string& canon,
                               const std::string& where, int depth) {
    dom::element type_el;
    if (o.at_key("type").get(type_el) != simdjson::SUCCESS) invalid(where, "object without \"type\"");
    if (type_el.type() != dom::element_type::STRING) {
      // {"type": {...}} or {"type": [...]}: the nested schema is the schema (Avro Java accepts this too).
      return parse(type_el, ns, canon, where, depth + 1);
    }
    const std::string_view type(type_el);
    std::map<std::string, std::string> members;
    // Attributes that do not change what the schema means are dropped; unknown ones are kept verbatim.
    const auto keep_others = [&](std::initializer_list<std::string_view> handled) {
      for (auto [k, v] : o) {
        if (k == "doc" || std::find(handled.begin(), handled.end(), k) != handled.end()) continue;
        // A key given twice: the first counts, as for the keys read with at_key (appending both values made
        // a canonical text that is not JSON).
        if (auto [it, added] = members.try_emplace(std::string(k)); added) canonical_json(v, it->second);
      }
    };
    members["type"] = json_quoted(type == "error" ? "record" : type);

    if (auto k = primitive_kind(type)) {
      AvroNode& n = make(*k);
      n.logical_type = optional_string(o, "logicalType", where);
      keep_others({"type"});
      canon += members.size() == 1 ? members["type"] : canonical_object(members);
      return &n;
    }
    if (type == "array" || type == "map") {
      AvroNode& n = make(type == "array" ? AvroKind::kArray : AvroKind::kMap);
      const char* key = type == "array" ? "items" : "values";
      dom::element items;
      if (o.at_key(key).get(items) != simdjson::SUCCESS)
        invalid(where, std::string(type) + " without " + key);
      n.items = parse(items, ns, members[key], where + (type == "array" ? "[]" : "{}"), depth + 1);
      keep_others({"type", key});
      canon += canonical_object(members);
      return &n;
    }
    if (type != "record" && type != "error" && type != "enum" && type != "fixed") {
      return parse_name(type, ns, canon, where);  // {"type": "SomeNamedType"}
    }

    // Named types.
    const std::string name = optional_string(o, "name", where);
    if (name.empty()) invalid(where, std::string(type) + " without a name");
    const std::string own_ns =
        name.find('.') != std::string::npos
            ? std::string(namespace_of(name))
            : (o.at_key("namespace").error() == simdjson::SUCCESS ? optional_string(o, "namespace", where)
                                                                  : ns);
    const std::string full = qualify(name, own_ns);
    if (!valid_full_name(full)) invalid(where, "invalid name \"" + full + "\"");
    if (primitive_kind(full)) invalid(where, "a named type may not be called " + full);
    if (_named.count(full)) invalid(where, "type " + full + " is defined twice");
    const std::string& at = full;
    AvroNode& n = make(type == "enum"    ? AvroKind::kEnum
                       : type == "fixed" ? AvroKind::kFixed
                                         : AvroKind::kRecord);
    n.name = full;
    _named.emplace(full, &n);  // before the fields: a record may refer to itself
    members["name"] = json_quoted(full);
    dom::element aliases;
    if (o.at_key("aliases").get(aliases) == simdjson::SUCCESS) {
      for (const auto& a : string_list(aliases, "aliases", at)) n.aliases.push_back(qualify(a, own_ns));
      std::string& c = members["aliases"];
      c = "[";
      for (std::size_t i = 0; i < n.aliases.size(); ++i) c += (i ? "," : "") + json_quoted(n.aliases[i]);
      c += ']';
    }

    if (n.kind == AvroKind::kFixed) {
      dom::element size;
      if (o.at_key("size").get(size) != simdjson::SUCCESS || size.type() != dom::element_type::INT64 ||
          int64_t(size) < 0) {
        invalid(at, "fixed needs a non-negative integer size");
      }
      n.size = int64_t(size);
      keep_others({"type", "name", "namespace", "aliases"});
    } else if (n.kind == AvroKind::kEnum) {
      dom::element symbols;
      if (o.at_key("symbols").get(symbols) != simdjson::SUCCESS) invalid(at, "enum without symbols");
      n.symbols = string_list(symbols, "symbols", at);
      std::set<std::string_view> seen;
      for (const auto& s : n.symbols) {
        if (!valid_name(s)) invalid(at, "invalid enum symbol \"" + s + "\"");
        if (!seen.insert(s).second) invalid(at, "enum symbol \"" + s + "\" appears twice");
      }
      dom::element def;
      if (o.at_key("default").get(def) == simdjson::SUCCESS) {
        if (def.type() != dom::element_type::STRING || !seen.count(std::string_view(def))) {
          invalid(at, "enum default is not one of its symbols");
        }
        n.has_enum_default = true;
        n.enum_default = std::string(std::string_view(def));
      }
      keep_others({"type", "name", "namespace", "aliases"});
    } else {
      dom::element fields;
      if (o.at_key("fields").get(fields) != simdjson::SUCCESS || fields.type() != dom::element_type::ARRAY) {
        invalid(at, "record without a fields array");
      }
      std::string& c = members["fields"];
      c = "[";
      std::set<std::string> names;
      for (dom::element f : dom::array(fields)) {
        if (names.size() > 0) c += ',';
        parse_field(f, n, own_ns, c, at, depth, names);
      }
      c += ']';
      keep_others({"type", "name", "namespace", "aliases", "fields"});
    }
    canon += canonical_object(members);
    return &n;
  }

  void parse_field(dom::element f, AvroNode& record, const std::string& ns, std::string& canon,
                   const std::string& where, int depth, std::set<std::string>& names) {
    if (f.type() != dom::element_type::OBJECT) invalid(where, "a field is not an object");
    const dom::object o(f);
    AvroNode::Field field;
    field.name = optional_string(o, "name", where);
    if (!valid_name(field.name)) invalid(where, "invalid field name \"" + field.name + "\"");
    if (!names.insert(field.name).second) invalid(where, "field " + field.name + " appears twice");
    const std::string at = where + "." + field.name;
    std::map<std::string, std::string> members;
    members["name"] = json_quoted(field.name);
    dom::element type;
    if (o.at_key("type").get(type) != simdjson::SUCCESS) invalid(at, "field without a type");
    field.type = parse(type, ns, members["type"], at, depth + 1);
    dom::element def;
    if (o.at_key("default").get(def) == simdjson::SUCCESS) {
      field.has_default = true;
      canonical_json(def, field.default_json);
      members["default"] = field.default_json;
      _defaults.push_back({&record, record.fields.size(), def, at});
    }
    dom::element aliases;
    if (o.at_key("aliases").get(aliases) == simdjson::SUCCESS) {
      field.aliases = string_list(aliases, "aliases", at);
      canonical_json(aliases, members["aliases"]);
    }
    for (auto [k, v] : o) {
      if (k == "doc" || members.count(std::string(k))) continue;
      canonical_json(v, members[std::string(k)]);
    }
    record.fields.push_back(std::move(field));
    canon += canonical_object(members);
  }

  struct PendingDefault {
    const AvroNode* record;
    std::size_t field;  // an index: the fields vector still grows while later fields are parsed
    dom::element value;
    std::string where;
  };

  std::deque<AvroNode>& _nodes;
  std::map<std::string, const AvroNode*> _named;
  // Checked after the whole schema is read: a default may be of a type whose definition is not finished.
  std::vector<PendingDefault> _defaults;
};

}  // namespace

AvroSchema AvroSchema::parse(std::string_view json) {
  dom::parser parser;
  dom::element root;
  const simdjson::padded_string padded(json);
  if (auto err = parser.parse(padded).get(root); err) {
    invalid("", std::string("not JSON: ") + simdjson::error_message(err));
  }
  auto state = std::make_shared<State>();
  SchemaParser p(state->nodes);
  state->root = p.parse(root, "", state->canonical, "schema", 0);
  p.check_defaults();
  return AvroSchema(std::move(state));
}

const std::string& AvroSchema::canonical() const { return _state->canonical; }
const AvroNode& AvroSchema::root() const { return *_state->root; }

}  // namespace fleettwin::registry
