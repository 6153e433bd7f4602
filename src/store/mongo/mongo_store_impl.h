#pragma once

// MongoStore's private state, shared by the files that implement it (mongo_store.cc, mongo_connection.cc,
// mongo_queries.cc, mongo_analytics.cc). Nothing outside the adapter includes it.

#include <string>

#include "store/mongo/mongo_bson.h"
#include "store/mongo/mongo_store.h"

namespace fleettwin::store {

/// The collections of the store's database, opened on the instance's client. Same thread as the store.
class MongoStore::Impl {
 public:
  Impl(mongoc_client_t* client, const std::string& db)
      : twins(mongoc_client_get_collection(client, db.c_str(), "twins")),
        telemetry(mongoc_client_get_collection(client, db.c_str(), "telemetry")),
        alerts(mongoc_client_get_collection(client, db.c_str(), "alerts")),
        commands(mongoc_client_get_collection(client, db.c_str(), "commands")),
        aggregates(mongoc_client_get_collection(client, db.c_str(), "aggregates")) {}
  mongo::CollectionPtr twins, telemetry, alerts, commands, aggregates;
};

}  // namespace fleettwin::store
