#include "store/mongo/mongo_bson.h"

#include <cmath>
#include <limits>

namespace fleettwin::store::mongo {
namespace {

int key_len(std::string_view key) { return static_cast<int>(key.size()); }

bool find(const bson_t* doc, const char* path, bson_iter_t& it) {
  bson_iter_t root;
  return bson_iter_init(&root, doc) && bson_iter_find_descendant(&root, path, &it);
}

/// Finds a number or a date (ms), the types both numeric readers accept.
bool find_number(const bson_t* doc, const char* path, bson_iter_t& it) {
  if (!find(doc, path, it)) return false;
  switch (bson_iter_type(&it)) {
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DATE_TIME:
      return true;
    default:
      return false;
  }
}

}  // namespace

MongoError::MongoError(const std::string& context, const bson_error_t& error)
    : std::runtime_error("mongo: " + context + ": " + error.message + " (domain " +
                         std::to_string(error.domain) + ", code " + std::to_string(error.code) + ")"),
      _code(error.code),
      _domain(error.domain) {}

bool MongoError::transient() const {
  if (_domain == MONGOC_ERROR_STREAM || _domain == MONGOC_ERROR_SERVER_SELECTION ||
      _domain == MONGOC_ERROR_PROTOCOL) {
    return true;
  }
  // Server codes of MongoDB's retryable-writes list: host unreachable/not found, network timeout,
  // shutdown in progress, not primary, socket exception, exceeded time limit.
  switch (_code) {
    case 6:
    case 7:
    case 89:
    case 91:
    case 189:
    case 262:
    case 9001:
    case 10107:
    case 11600:
    case 11602:
    case 13435:
    case 13436:
      return _domain != 0;
    default:
      return false;
  }
}

Bson Bson::from_json(std::string_view json) {
  bson_error_t error;
  Bson out(bson_new_from_json(reinterpret_cast<const uint8_t*>(json.data()),
                              static_cast<ssize_t>(json.size()), &error));
  if (out.get() == nullptr) throw MongoError("JSON text", error);
  return out;
}

std::string Bson::json() const {
  size_t len = 0;
  char* s = bson_as_relaxed_extended_json(_b, &len);
  std::string out = s != nullptr ? std::string(s, len) : std::string();
  bson_free(s);
  return out;
}

void append_str(bson_t* b, std::string_view key, std::string_view value) {
  bson_append_utf8(b, key.data(), key_len(key), value.data(), static_cast<int>(value.size()));
}
void append_num(bson_t* b, std::string_view key, double value) {
  if (std::isnan(value)) {
    bson_append_null(b, key.data(), key_len(key));
  } else {
    bson_append_double(b, key.data(), key_len(key), value);
  }
}
void append_int(bson_t* b, std::string_view key, int64_t value) {
  bson_append_int64(b, key.data(), key_len(key), value);
}
void append_bool(bson_t* b, std::string_view key, bool value) {
  bson_append_bool(b, key.data(), key_len(key), value);
}
void append_date(bson_t* b, std::string_view key, int64_t ms) {
  bson_append_date_time(b, key.data(), key_len(key), ms);
}
void append_doc(bson_t* b, std::string_view key, const bson_t* doc) {
  bson_append_document(b, key.data(), key_len(key), doc);
}
void append_point(bson_t* b, std::string_view key, double lat, double lon) {
  if (!std::isfinite(lat) || !std::isfinite(lon)) return;
  bson_t point;
  bson_t coords;
  bson_append_document_begin(b, key.data(), key_len(key), &point);
  BSON_APPEND_UTF8(&point, "type", "Point");
  BSON_APPEND_ARRAY_BEGIN(&point, "coordinates", &coords);
  BSON_APPEND_DOUBLE(&coords, "0", lon);
  BSON_APPEND_DOUBLE(&coords, "1", lat);
  bson_append_array_end(&point, &coords);
  bson_append_document_end(b, &point);
}

DocWriter& DocWriter::int32(std::string_view key, int32_t value) {
  bson_append_int32(_b, key.data(), key_len(key), value);
  return *this;
}

DocWriter& DocWriter::date_range(std::string_view key, int64_t from_ms, int64_t to_ms) {
  return child(key, [&](DocWriter& range) { range.date("$gte", from_ms).date("$lt", to_ms); });
}

Bson id_filter(std::string_view id) {
  Bson f;
  f.str("_id", id);
  return f;
}

Bson id_in(const std::vector<std::string>& ids) {
  Bson f;
  f.child("_id", [&](DocWriter& id) {
    id.array("$in", [&](ArrayWriter& in) {
      for (const auto& i : ids) in.str(i);
    });
  });
  return f;
}

Bson find_opts(std::initializer_list<std::pair<std::string_view, int>> sort, int64_t limit,
               std::initializer_list<std::string_view> projection) {
  Bson opts;
  if (sort.size() > 0) {
    opts.child("sort", [&](DocWriter& s) {
      for (const auto& [key, direction] : sort) s.int32(key, direction);
    });
  }
  if (limit > 0) opts.int64("limit", limit);
  if (projection.size() > 0) {
    opts.child("projection", [&](DocWriter& p) {
      for (const auto& field : projection) p.int32(field, 1);
    });
  }
  return opts;
}

std::string get_str(const bson_t* doc, const char* path) {
  bson_iter_t it;
  if (!find(doc, path, it) || !BSON_ITER_HOLDS_UTF8(&it)) return {};
  uint32_t len = 0;
  const char* s = bson_iter_utf8(&it, &len);
  return std::string(s, len);
}

double get_num(const bson_t* doc, const char* path) {
  bson_iter_t it;
  if (!find_number(doc, path, it)) return std::numeric_limits<double>::quiet_NaN();
  return BSON_ITER_HOLDS_DATE_TIME(&it) ? static_cast<double>(bson_iter_date_time(&it))
                                        : bson_iter_as_double(&it);
}

int64_t get_int(const bson_t* doc, const char* path) {
  bson_iter_t it;
  if (!find_number(doc, path, it)) return 0;
  return BSON_ITER_HOLDS_DATE_TIME(&it) ? bson_iter_date_time(&it) : bson_iter_as_int64(&it);
}

bool get_bool(const bson_t* doc, const char* path) {
  bson_iter_t it;
  return find(doc, path, it) && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
}

bool has(const bson_t* doc, const char* path) {
  bson_iter_t it;
  return find(doc, path, it);
}

std::vector<std::string> get_str_list(const bson_t* doc, const char* path) {
  std::vector<std::string> out;
  bson_iter_t it;
  bson_iter_t child;
  if (find(doc, path, it) && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child)) {
    while (bson_iter_next(&child)) {
      if (!BSON_ITER_HOLDS_UTF8(&child)) continue;
      uint32_t len = 0;
      const char* s = bson_iter_utf8(&child, &len);
      out.emplace_back(s, len);
    }
  }
  return out;
}

std::vector<double> get_num_list(const bson_t* doc, const char* path) {
  std::vector<double> out;
  bson_iter_t it;
  bson_iter_t child;
  if (find(doc, path, it) && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child)) {
    while (bson_iter_next(&child)) {
      out.push_back(BSON_ITER_HOLDS_NUMBER(&child) ? bson_iter_as_double(&child)
                                                   : std::numeric_limits<double>::quiet_NaN());
    }
  }
  return out;
}

}  // namespace fleettwin::store::mongo
