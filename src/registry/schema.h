#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fleettwin::registry {

// Avro schema model for the schema registry: parsing with validation, a canonical text for identity, the
// schema resolution check behind the compatibility levels, and a schema-driven datum reader. Written here
// rather than taken from a library: Avro C (libavro-dev) resolves schemas but ignores reader defaults
// ("Reader field b doesn't appear in writer" for the most common compatible change), has no canonical
// form that keeps defaults, and gives one message where the registry reports every problem with its path.

enum class AvroKind : uint8_t {
  kNull,
  kBoolean,
  kInt,
  kLong,
  kFloat,
  kDouble,
  kBytes,
  kString,
  kRecord,
  kEnum,
  kArray,
  kMap,
  kFixed,
  kUnion,
};

/// "null", "boolean", ..., "record", "enum", "array", "map", "fixed", "union".
std::string_view to_string(AvroKind kind);
/// Deeper schemas (and datums) are refused instead of risking the stack of an HTTP worker thread.
inline constexpr int kMaxSchemaDepth = 64;
/// More items than this in one array or map of a datum is treated as garbage: an item of type null takes no
/// bytes, so the input length alone does not bound a block count.
inline constexpr int64_t kMaxDatumItems = 1 << 20;

/// Records, enums and fixed types carry a name (and may be referenced by it).
bool is_named(AvroKind kind);

/// One type of a parsed schema. Named types (record, enum, fixed) are shared by every reference to them,
/// so a recursive record is a cycle of pointers; the nodes belong to their AvroSchema. Plain value.
struct AvroNode {
  struct Field {
    std::string name;
    const AvroNode* type = nullptr;
    bool has_default = false;
    std::string default_json;  ///< canonical JSON text of the default, when has_default
    std::vector<std::string> aliases;
  };

  AvroKind kind = AvroKind::kNull;
  std::string name;                  ///< full name of a named type
  std::vector<std::string> aliases;  ///< full names
  std::string logical_type;          ///< e.g. "timestamp-millis"; informative only
  std::vector<Field> fields;         ///< record
  std::vector<std::string> symbols;  ///< enum
  bool has_enum_default = false;
  std::string enum_default;
  const AvroNode* items = nullptr;        ///< array items, map values
  std::vector<const AvroNode*> branches;  ///< union
  int64_t size = 0;                       ///< fixed

  /// Short name of a named type: the part after the last dot.
  std::string_view short_name() const;
};

/// A parsed and validated Avro schema (specification 1.11) with its canonical text. Immutable; copies
/// share the nodes, so it is cheap to copy and safe to read from any thread.
class AvroSchema {
 public:
  /// Parses `json`. Throws std::invalid_argument naming the place and the reason when it is not JSON or not
  /// a valid schema: unknown or redefined type names, invalid names, records without fields, duplicate
  /// field names, enums with bad or duplicate symbols, unions nested directly or with duplicate branches,
  /// fixed without a size, defaults that do not match their type (a union's default may match any branch,
  /// as Avro Java accepts).
  static AvroSchema parse(std::string_view json);

  /// The identity of the schema: compact JSON with object keys sorted, "doc" attributes dropped, names
  /// fully qualified (no "namespace"), and {"type": "int"} written as "int". Two schemas with the same
  /// canonical text are the same schema. Unlike Avro's Parsing Canonical Form it keeps defaults, aliases,
  /// logical types and order, which matter for compatibility and for readers.
  const std::string& canonical() const;
  const AvroNode& root() const;

 private:
  struct State;
  explicit AvroSchema(std::shared_ptr<const State> state) : _state(std::move(state)) {}
  std::shared_ptr<const State> _state;
};

/// Why data written with `writer` cannot be read with `reader`, following Avro's schema resolution rules;
/// empty when it can. Each text names the path (e.g. "CarTelemetry.tags[]") and the problem.
/// Covered: same primitives; promotions int->long/float/double, long->float/double, float->double,
/// string<->bytes; records matched by unqualified name or reader alias, fields by name or reader field
/// alias, a reader field missing from the writer needs a default, writer-only fields are skipped; enums
/// (every writer symbol known to the reader, unless the reader has an enum default); arrays and maps by
/// their item types; fixed by name and size; unions on either side (every writer branch must be readable
/// by some reader branch); recursive types. Not covered: logical types are ignored (as Avro Java does),
/// and a default's value is checked against its type at parse time but not re-checked here.
/// Polynomial in the schemas' sizes (each pair of reader and writer types is resolved a bounded number of
/// times, whatever the union nesting or the number of references to a named type), so a registry can run it
/// on schemas from outside; a problem of a pair of types met at several paths is reported at the first.
/// `steps`, when given, receives the number of type pairs resolved (tests bound it).
std::vector<std::string> avro_read_problems(const AvroSchema& reader, const AvroSchema& writer,
                                            std::size_t* steps = nullptr);

/// Decodes one Avro binary datum (without the Confluent header) written with `schema` into JSON, in the
/// Avro JSON encoding (unions as {"branch": value}, bytes and fixed as strings of code points 0-255). For
/// tests and diagnostics: it proves a record can be read with nothing but the schema fetched by id.
/// False with `error` set on truncated or malformed input or trailing bytes.
bool avro_datum_to_json(const AvroSchema& schema, std::string_view body, std::string& json,
                        std::string* error);

}  // namespace fleettwin::registry
