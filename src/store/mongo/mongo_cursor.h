#pragma once

// Reads of the mongo adapter: every document of a find or an aggregation handed to a callback, and counts;
// a failed read throws MongoError naming what the adapter was doing.

#include <cstdint>
#include <optional>
#include <vector>

#include "store/mongo/mongo_bson.h"

namespace fleettwin::store::mongo {

template <typename F>
void for_each_doc(mongoc_cursor_t* cursor, F&& f, const char* what) {
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor, &doc)) f(doc);
  bson_error_t error;
  if (mongoc_cursor_error(cursor, &error)) throw MongoError(what, error);
}

/// Calls f(const bson_t*) with each document of coll matching `filter` (find options in `opts`).
template <typename F>
void find(mongoc_collection_t* coll, const Bson& filter, const Bson& opts, F&& f, const char* what) {
  CursorPtr cursor(mongoc_collection_find_with_opts(coll, filter.get(), opts.get(), nullptr));
  for_each_doc(cursor.get(), f, what);
}

/// Calls f(const bson_t*) with each result of `pipeline` ({pipeline: [...]}) on coll.
template <typename F>
void aggregate(mongoc_collection_t* coll, const Bson& pipeline, F&& f, const char* what) {
  CursorPtr cursor(mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline.get(), nullptr, nullptr));
  for_each_doc(cursor.get(), f, what);
}

/// Every document of coll matching `filter`, each read by read(const bson_t*) -> T, in the cursor's order.
template <typename T, typename Read>
std::vector<T> find_all(mongoc_collection_t* coll, const Bson& filter, const Bson& opts, Read&& read,
                        const char* what) {
  std::vector<T> out;
  find(
      coll, filter, opts, [&](const bson_t* d) { out.push_back(read(d)); }, what);
  return out;
}

/// The document of coll matching `filter` (a filter by _id: one at most), read by read(const bson_t*) -> T.
template <typename T, typename Read>
std::optional<T> find_one(mongoc_collection_t* coll, const Bson& filter, Read&& read, const char* what) {
  std::optional<T> out;
  find(
      coll, filter, Bson(), [&](const bson_t* d) { out = read(d); }, what);
  return out;
}

inline int64_t count(mongoc_collection_t* coll, const Bson& filter, const char* what) {
  bson_error_t error;
  const int64_t n = mongoc_collection_count_documents(coll, filter.get(), nullptr, nullptr, nullptr, &error);
  if (n < 0) throw MongoError(what, error);
  return n;
}

}  // namespace fleettwin::store::mongo
