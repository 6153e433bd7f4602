// A datum of any registered schema printed as JSON: how the registry and tools show a record.
#include "registry/schema.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "codec/avro.h"
#include "codec/json_writer.h"

namespace fleettwin::registry {

namespace {

/// Walks one datum with AvroReader, writing JSON. One per avro_datum_to_json() call.
class DatumPrinter {
 public:
  DatumPrinter(std::string_view body, std::string& out) : _r(body), _w(out) {}

  bool print(const AvroNode* t, int depth) {
    if (depth > kMaxSchemaDepth)
      return fail("nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
    switch (t->kind) {
      case AvroKind::kNull:
        _w.null();
        return true;
      case AvroKind::kBoolean: {
        bool v;
        if (!_r.read_boolean(v)) return fail();
        _w.boolean(v);
        return true;
      }
      case AvroKind::kInt: {
        int32_t v;
        if (!_r.read_int(v)) return fail();
        _w.integer(v);
        return true;
      }
      case AvroKind::kLong: {
        int64_t v;
        if (!_r.read_long(v)) return fail();
        _w.integer(v);
        return true;
      }
      case AvroKind::kFloat: {
        float v;
        if (!_r.read_float(v)) return fail();
        _w.number(v);
        return true;
      }
      case AvroKind::kDouble: {
        double v;
        if (!_r.read_double(v)) return fail();
        _w.number(v);
        return true;
      }
      case AvroKind::kString: {
        std::string_view v;
        if (!_r.read_string(v)) return fail();
        _w.string(v);
        return true;
      }
      case AvroKind::kBytes: {
        std::string_view v;
        if (!_r.read_string(v)) return fail();
        _w.string(latin1(v));
        return true;
      }
      case AvroKind::kFixed: {
        std::string_view v;
        if (!_r.read_fixed(static_cast<std::size_t>(t->size), v)) return fail();
        _w.string(latin1(v));
        return true;
      }
      case AvroKind::kEnum: {
        int32_t i;
        if (!_r.read_int(i)) return fail();
        if (i < 0 || static_cast<std::size_t>(i) >= t->symbols.size()) return fail("enum index out of range");
        _w.string(t->symbols[static_cast<std::size_t>(i)]);
        return true;
      }
      case AvroKind::kUnion: {
        int64_t i;
        if (!_r.read_long(i)) return fail();
        if (i < 0 || static_cast<std::size_t>(i) >= t->branches.size())
          return fail("union index out of range");
        const AvroNode* b = t->branches[static_cast<std::size_t>(i)];
        if (b->kind == AvroKind::kNull) {
          _w.null();
          return true;
        }
        _w.begin_object().key(is_named(b->kind) ? b->name : std::string(to_string(b->kind)));
        if (!print(b, depth + 1)) return false;
        _w.end_object();
        return true;
      }
      case AvroKind::kRecord:
        _w.begin_object();
        for (const auto& f : t->fields) {
          _w.key(f.name);
          if (!print(f.type, depth + 1)) return false;
        }
        _w.end_object();
        return true;
      case AvroKind::kArray:
      case AvroKind::kMap:
        return print_blocks(t, depth);
    }
    return fail("unknown type");
  }

  bool finish(std::string* error) {
    if (!_r.at_end()) {
      _error = std::to_string(_r.remaining()) + " trailing bytes";
    }
    if (!_error.empty() && error) *error = _error;
    return _error.empty();
  }
  std::string take_error() { return _error; }

 private:
  bool print_blocks(const AvroNode* t, int depth) {
    const bool map = t->kind == AvroKind::kMap;
    map ? _w.begin_object() : _w.begin_array();
    const bool ok = _r.read_blocks(map, kMaxDatumItems, [&](std::string_view key) {
      if (map) _w.key(key);
      return print(t->items, depth + 1);
    });
    if (!ok) return _error.empty() ? fail() : false;  // an item that failed has said why
    map ? _w.end_object() : _w.end_array();
    return true;
  }

  static std::string latin1(std::string_view bytes) {
    std::string out;
    for (unsigned char c : bytes) {
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
      } else {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      }
    }
    return out;
  }

  bool fail(std::string what = {}) {
    if (what.empty()) what = _r.error() ? _r.error() : "read failed";
    _error = "byte " + std::to_string(_r.position()) + ": " + what;
    return false;
  }

  codec::AvroReader _r;
  codec::JsonWriter _w;
  std::string _error;
};

}  // namespace

bool avro_datum_to_json(const AvroSchema& schema, std::string_view body, std::string& json,
                        std::string* error) {
  json.clear();
  DatumPrinter p(body, json);
  if (!p.print(&schema.root(), 0)) {
    if (error) *error = p.take_error();
    return false;
  }
  return p.finish(error);
}

}  // namespace fleettwin::registry
