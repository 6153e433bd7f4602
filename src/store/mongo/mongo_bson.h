#pragma once

// RAII owners for the libmongoc/libbson handles the mongo adapter uses, and a few typed append/read helpers.
// libbson's C API leaves every destroy to the caller; these make an exception anywhere in the adapter safe.

#include <bson/bson.h>
#include <mongoc/mongoc.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

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

/// An owned bson_t (heap-allocated, so it can be moved). Single thread.
class Bson {
 public:
  Bson() : _b(bson_new()) {}
  explicit Bson(bson_t* adopt) : _b(adopt) {}
  ~Bson() {
    if (_b != nullptr) bson_destroy(_b);
  }
  Bson(Bson&& o) noexcept : _b(o._b) { o._b = nullptr; }
  Bson& operator=(Bson&& o) noexcept {
    std::swap(_b, o._b);
    return *this;
  }
  Bson(const Bson&) = delete;
  Bson& operator=(const Bson&) = delete;
  bson_t* get() const { return _b; }
  std::string json() const;  ///< relaxed extended JSON, for error messages and logs

 private:
  bson_t* _b;
};

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

// Readers: the value at a dotted path of `doc`, with a fallback when absent or of another type.
std::string get_str(const bson_t* doc, const char* path);
double get_num(const bson_t* doc, const char* path);   ///< null or absent -> NaN; any numeric type
int64_t get_int(const bson_t* doc, const char* path);  ///< int32/int64/double/date (ms)
bool get_bool(const bson_t* doc, const char* path);
bool has(const bson_t* doc, const char* path);

}  // namespace fleettwin::store::mongo
