#pragma once

// RAII owners for the libmongoc/libbson handles the mongo adapter uses, chained typed writers for the
// documents it builds, and typed readers. libbson's C API leaves every destroy to the caller; these make an
// exception anywhere in the adapter safe. libbson does all the encoding: the writers only name the steps.

#include <bson/bson.h>
#include <mongoc/mongoc.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace fleettwin::store::mongo {

/// A failed MongoDB call: libmongoc's domain/code and message, plus what the adapter was doing. `code()` is
/// the server's error code where there is one (e.g. 11000 duplicate key).
class MongoError : public std::runtime_error {
 public:
  MongoError(const std::string& context, const bson_error_t& error);
  MongoError(const std::string& what, uint32_t code = 0) : std::runtime_error(what), _code(code) {}
  uint32_t code() const { return _code; }
  uint32_t domain() const { return _domain; }  ///< bson_error_t.domain; 0 when not from the driver
  /// The server was unreachable or not answering (network, server selection, a server shutting down or
  /// not yet primary): the same call may succeed later.
  bool transient() const;

 private:
  uint32_t _code = 0;
  uint32_t _domain = 0;
};

// Appenders. A NaN double is written as null: BSON can hold NaN, but MongoDB sorts and aggregates it unlike
// SQLite (which stores it as NULL); null gives both stores the same semantics, and reads back as NaN.
void append_str(bson_t* b, std::string_view key, std::string_view value);
void append_num(bson_t* b, std::string_view key, double value);
void append_int(bson_t* b, std::string_view key, int64_t value);
void append_bool(bson_t* b, std::string_view key, bool value);
void append_date(bson_t* b, std::string_view key, int64_t ms);
void append_doc(bson_t* b, std::string_view key, const bson_t* doc);
/// GeoJSON Point {type: "Point", coordinates: [lon, lat]}; nothing when either is not finite.
void append_point(bson_t* b, std::string_view key, double lat, double lon);

class ArrayWriter;

/// Chained typed appends to a BSON document it does not own: a Bson, or a child document being written.
/// Nested documents and arrays are written by a callback between libbson's begin and end, so a document
/// reads in the shape it has. Single thread, like the document.
class DocWriter {
 public:
  explicit DocWriter(bson_t* b) : _b(b) {}
  bson_t* get() const { return _b; }

  DocWriter& str(std::string_view key, std::string_view value) {
    append_str(_b, key, value);
    return *this;
  }
  DocWriter& num(std::string_view key, double value) {  ///< NaN as null (see append_num)
    append_num(_b, key, value);
    return *this;
  }
  DocWriter& int64(std::string_view key, int64_t value) {
    append_int(_b, key, value);
    return *this;
  }
  DocWriter& int32(std::string_view key, int32_t value);
  DocWriter& boolean(std::string_view key, bool value) {
    append_bool(_b, key, value);
    return *this;
  }
  DocWriter& date(std::string_view key, int64_t ms) {
    append_date(_b, key, ms);
    return *this;
  }
  /// {key: {$gte: from, $lt: to}} on a date field.
  DocWriter& date_range(std::string_view key, int64_t from_ms, int64_t to_ms);
  /// A copy of `value` under `key`.
  DocWriter& doc(std::string_view key, const bson_t* value) {
    append_doc(_b, key, value);
    return *this;
  }
  /// {key: {...}}, written by fill(DocWriter&).
  template <typename Fill>
  DocWriter& child(std::string_view key, Fill&& fill);
  /// {key: [...]}, written by fill(ArrayWriter&).
  template <typename Fill>
  DocWriter& array(std::string_view key, Fill&& fill);

 protected:
  bson_t* _b;
};

/// Appends to a BSON array it does not own, numbering the keys "0", "1", ... as BSON arrays require.
/// Single thread, like the document.
class ArrayWriter {
 public:
  explicit ArrayWriter(bson_t* b) : _b(b) {}
  ArrayWriter& str(std::string_view value) {
    append_str(_b, next_key(), value);
    return *this;
  }
  ArrayWriter& num(double value) {  ///< NaN as null (see append_num)
    append_num(_b, next_key(), value);
    return *this;
  }
  ArrayWriter& doc(const bson_t* value) {
    append_doc(_b, next_key(), value);
    return *this;
  }
  /// A document element, written by fill(DocWriter&).
  template <typename Fill>
  ArrayWriter& child(Fill&& fill);

 private:
  std::string next_key() { return std::to_string(_next++); }
  bson_t* _b;
  uint32_t _next = 0;
};

/// Writes {key: ...} into `parent`: a document or an array (`Writer` DocWriter or ArrayWriter), filled by
/// fill(Writer&) between libbson's begin and end.
template <typename Writer, typename Fill>
void append_nested(bson_t* parent, std::string_view key, Fill&& fill) {
  constexpr bool kArray = std::is_same_v<Writer, ArrayWriter>;
  bson_t nested;
  const int len = static_cast<int>(key.size());
  kArray ? bson_append_array_begin(parent, key.data(), len, &nested)
         : bson_append_document_begin(parent, key.data(), len, &nested);
  Writer w(&nested);
  fill(w);
  kArray ? bson_append_array_end(parent, &nested) : bson_append_document_end(parent, &nested);
}

template <typename Fill>
DocWriter& DocWriter::child(std::string_view key, Fill&& fill) {
  append_nested<DocWriter>(_b, key, std::forward<Fill>(fill));
  return *this;
}

template <typename Fill>
DocWriter& DocWriter::array(std::string_view key, Fill&& fill) {
  append_nested<ArrayWriter>(_b, key, std::forward<Fill>(fill));
  return *this;
}

template <typename Fill>
ArrayWriter& ArrayWriter::child(Fill&& fill) {
  append_nested<DocWriter>(_b, next_key(), std::forward<Fill>(fill));
  return *this;
}

/// An owned bson_t (heap-allocated, so it can be moved), written through DocWriter's chained appends.
/// Single thread.
class Bson : public DocWriter {
 public:
  Bson() : DocWriter(bson_new()) {}
  explicit Bson(bson_t* adopt) : DocWriter(adopt) {}
  ~Bson() {
    if (_b != nullptr) bson_destroy(_b);
  }
  Bson(Bson&& o) noexcept : DocWriter(o._b) { o._b = nullptr; }
  Bson& operator=(Bson&& o) noexcept {
    std::swap(_b, o._b);
    return *this;
  }
  Bson(const Bson&) = delete;
  Bson& operator=(const Bson&) = delete;
  /// The document of a (relaxed or canonical) extended JSON text; throws MongoError if it is not one.
  static Bson from_json(std::string_view json);
  std::string json() const;  ///< relaxed extended JSON, for error messages and logs
};

// Builders of the small documents every query and write repeats.

/// {_id: id}
Bson id_filter(std::string_view id);
/// {_id: {$in: [ids...]}}
Bson id_in(const std::vector<std::string>& ids);
/// {$set: {...}}, the fields written by fill(DocWriter&).
template <typename Fill>
Bson set_update(Fill&& fill) {
  Bson u;
  u.child("$set", std::forward<Fill>(fill));
  return u;
}
/// Options of a find: {sort: {key: direction, ...}, limit: n, projection: {field: 1, ...}}, each part
/// only when given (limit > 0).
Bson find_opts(std::initializer_list<std::pair<std::string_view, int>> sort, int64_t limit = 0,
               std::initializer_list<std::string_view> projection = {});

template <typename T, void (*Destroy)(T*)>
struct Deleter {
  void operator()(T* p) const {
    if (p != nullptr) Destroy(p);
  }
};
using CollectionPtr =
    std::unique_ptr<mongoc_collection_t, Deleter<mongoc_collection_t, mongoc_collection_destroy>>;
using CursorPtr = std::unique_ptr<mongoc_cursor_t, Deleter<mongoc_cursor_t, mongoc_cursor_destroy>>;
using BulkPtr =
    std::unique_ptr<mongoc_bulk_operation_t, Deleter<mongoc_bulk_operation_t, mongoc_bulk_operation_destroy>>;
using UriPtr = std::unique_ptr<mongoc_uri_t, Deleter<mongoc_uri_t, mongoc_uri_destroy>>;
using PoolPtr =
    std::unique_ptr<mongoc_client_pool_t, Deleter<mongoc_client_pool_t, mongoc_client_pool_destroy>>;
using DatabasePtr = std::unique_ptr<mongoc_database_t, Deleter<mongoc_database_t, mongoc_database_destroy>>;

// Readers: the value at a dotted path of `doc`, with a fallback when absent or of another type.
std::string get_str(const bson_t* doc, const char* path);
double get_num(const bson_t* doc, const char* path);   ///< null or absent -> NaN; any numeric type
int64_t get_int(const bson_t* doc, const char* path);  ///< int32/int64/double/date (ms)
bool get_bool(const bson_t* doc, const char* path);
bool has(const bson_t* doc, const char* path);
/// The UTF-8 elements of the array at `path` (others skipped); empty when absent.
std::vector<std::string> get_str_list(const bson_t* doc, const char* path);
/// Every element of the array at `path` as a number (null and non-numbers read NaN); empty when absent.
std::vector<double> get_num_list(const bson_t* doc, const char* path);

}  // namespace fleettwin::store::mongo
