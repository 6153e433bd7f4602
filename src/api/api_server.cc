#include "api/api_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "api/event_hub.h"
#include "api/history.h"
#include "api/settings.h"
#include "codec/json.h"
#include "codec/json_writer.h"
#include "core/signals.h"
#include "core/topics.h"
#include "store/filter.h"

namespace fleettwin::api {

namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string error_json(std::string_view message, std::optional<std::size_t> position = std::nullopt) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("error").string(message);
  if (position) w.key("position").integer(static_cast<int64_t>(*position));
  w.end_object();
  return out;
}

/// Lends store connections to worker threads: a store instance is a one-thread object, and opening one
/// per request would cost a file open and a schema check each time. Any thread.
class StorePool {
 public:
  explicit StorePool(std::function<std::unique_ptr<store::TwinStore>()> open) : _open(std::move(open)) {}

  class Lease {
   public:
    Lease(StorePool& pool, std::unique_ptr<store::TwinStore> s) : _pool(pool), _store(std::move(s)) {}
    ~Lease() { _pool.give_back(std::move(_store)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    store::TwinStore* operator->() { return _store.get(); }
    store::TwinStore& operator*() { return *_store; }

   private:
    StorePool& _pool;
    std::unique_ptr<store::TwinStore> _store;
  };

  Lease acquire() {
    {
      std::lock_guard lock(_mu);
      if (!_idle.empty()) {
        auto s = std::move(_idle.back());
        _idle.pop_back();
        return Lease(*this, std::move(s));
      }
    }
    if (!_open) throw ApiError(503, "no store configured");
    return Lease(*this, _open());
  }

 private:
  void give_back(std::unique_ptr<store::TwinStore> s) {
    // A store that threw mid-request is still usable (adapters roll back); keep a bounded number idle.
    std::lock_guard lock(_mu);
    if (_idle.size() < 16) _idle.push_back(std::move(s));
  }

  std::function<std::unique_ptr<store::TwinStore>()> _open;
  std::mutex _mu;
  std::vector<std::unique_ptr<store::TwinStore>> _idle;
};

/// One sample of the pipeline's counters (what /fleet/throughput returns and the stream pushes).
struct ThroughputSample {
  int64_t ts = 0;
  double msgs_per_s = 0;
  int64_t published = 0, processed = 0, stored = 0, dlq = 0, lag = 0, online = 0;
};

std::string sample_json(const ThroughputSample& s) {
  std::string out;
  codec::JsonWriter(out)
      .begin_object()
      .key("ts")
      .integer(s.ts)
      .key("msgs_per_s")
      .number(s.msgs_per_s)
      .key("published")
      .integer(s.published)
      .key("processed")
      .integer(s.processed)
      .key("stored")
      .integer(s.stored)
      .key("dlq")
      .integer(s.dlq)
      .key("lag")
      .integer(s.lag)
      .key("online")
      .integer(s.online)
      .end_object();
  return out;
}

std::optional<std::string> query(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return std::nullopt;
  return req.get_param_value(name);
}

int64_t int_param(const httplib::Request& req, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const auto text = query(req, name);
  if (!text || text->empty()) return fallback;
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size() || v < lo || v > hi)
    throw ApiError(400, std::string(name) + ": expected an integer " + std::to_string(lo) + ".." +
                            std::to_string(hi) + ", got '" + *text + "'");
  return v;
}

/// The token of a request: `Authorization: Bearer T`, else `?token=T` (EventSource cannot send headers),
/// else the dashboard's `fleettwin_token` cookie.
std::string request_token(const httplib::Request& req) {
  const auto auth = req.get_header_value("Authorization");
  if (auth.rfind("Bearer ", 0) == 0) return auth.substr(7);
  if (req.has_param("token")) return req.get_param_value("token");
  const auto cookie = req.get_header_value("Cookie");
  const std::string key = "fleettwin_token=";
  for (std::size_t pos = 0; (pos = cookie.find(key, pos)) != std::string::npos; pos += key.size()) {
    if (pos > 0 && cookie[pos - 1] != ' ' && cookie[pos - 1] != ';') continue;
    const auto start = pos + key.size();
    return cookie.substr(start, cookie.find(';', start) - start);
  }
  return "";
}

const char* status_code(core::HealthStatus s) {
  switch (s) {
    case core::HealthStatus::kOk:
      return "1";
    case core::HealthStatus::kWarning:
      return "2";
    case core::HealthStatus::kAnomaly:
      return "3";
    case core::HealthStatus::kUnknown:
      break;
  }
  return "0";
}

}  // namespace

/// Route handler: the request, the response, and the path parameters in template order.
using Handler =
    std::function<void(const httplib::Request&, httplib::Response&, const std::vector<std::string>&)>;

struct RouteDef {
  std::string method, path;
  Role role;
};

struct ApiServer::Impl {
  ApiOptions options;
  httplib::Server http;
  StorePool stores;
  EventHub hub;
  std::thread listener, background;
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  int bound_port = 0;
  int listen_socket = -1;  // set while binding (set_socket_options), to widen the listen backlog
  std::vector<RouteDef> route_defs;
  std::atomic<uint64_t> command_sequence{0};

  std::mutex throughput_mu;
  std::deque<ThroughputSample> throughput;  // the last 10 minutes, one sample a second

  std::mutex producer_mu;
  std::unique_ptr<log::Producer> producer;  // fleet.commands; created on first use

  std::mutex models_mu;
  std::map<std::string, std::string> model_meta;  // fleet.models key -> metadata JSON of its newest artifact
  std::string shadow_artifact;                    // newest "anomaly.shadow" artifact, for promotion

  std::mutex positions_mu;
  std::string positions_cache;
  SteadyClock::time_point positions_at{};

  explicit Impl(ApiOptions o)
      : options(std::move(o)),
        stores(options.open_store),
        hub(options.max_stream_clients, options.stream_queue_bytes) {}

  // ---- routing ---------------------------------------------------------------------------------------

  void route(const std::string& method, const std::string& path, Role role, Handler handler) {
    route_defs.push_back({method, path, role});
    // "/api/v1/twins/{car}" -> "/api/v1/twins/([^/]+)"
    std::string pattern;
    for (std::size_t i = 0; i < path.size(); ++i) {
      if (path[i] == '{') {
        i = path.find('}', i);
        pattern += "([^/]+)";
      } else {
        if (path[i] == '.') pattern += '\\';
        pattern += path[i];
      }
    }
    const bool open = path.rfind("/api/", 0) != 0 || path == "/api/v1/openapi.yaml";
    auto wrapped = [this, handler = std::move(handler), role, open](const httplib::Request& req,
                                                                    httplib::Response& res) {
      try {
        if (!open) authorize(req, role);
        std::vector<std::string> params;
        for (std::size_t i = 1; i < req.matches.size(); ++i) params.push_back(req.matches[i].str());
        handler(req, res, params);
      } catch (const ApiError& e) {
        res.status = e.status;
        res.set_content(error_json(e.what()), "application/json");
      } catch (const store::FilterError& e) {
        res.status = 400;
        res.set_content(error_json(e.what(), e.position), "application/json");
      } catch (const std::exception& e) {
        spdlog::warn("api: {} {}: {}", req.method, req.path, e.what());
        res.status = 500;
        res.set_content(error_json(std::string("internal error: ") + e.what()), "application/json");
      }
    };
    if (method == "GET")
      http.Get(pattern, wrapped);
    else if (method == "POST")
      http.Post(pattern, wrapped);
    else if (method == "PATCH")
      http.Patch(pattern, wrapped);
  }

  void authorize(const httplib::Request& req, Role needed) const {
    const std::string token = request_token(req);
    if (token.empty()) throw ApiError(401, "missing API token: send Authorization: Bearer <token>");
    const auto role = options.tokens.role_of(token);
    if (!role) throw ApiError(401, "unknown API token");
    if (static_cast<int>(*role) < static_cast<int>(needed))
      throw ApiError(403, "this needs the " + std::string(to_string(needed)) + " role; the token has " +
                              std::string(to_string(*role)));
  }

  static void json(httplib::Response& res, std::string body, int status = 200) {
    res.status = status;
    res.set_content(std::move(body), "application/json");
  }

  core::Twin twin_or_404(store::TwinStore& s, const std::string& car) {
    if (!core::valid_car_id(car)) throw ApiError(400, "bad car id '" + car + "'");
    auto twin = s.get_twin(car);
    if (!twin) throw ApiError(404, "no car '" + car + "'");
    return std::move(*twin);
  }

  void register_routes() {
    route("GET", "/healthz", Role::kViewer, [](auto&, auto& res, auto&) { json(res, R"({"status":"ok"})"); });
    route("GET", "/readyz", Role::kViewer, [this](auto&, auto& res, auto&) {
      auto s = stores.acquire();
      // The store answers: one lookup in the small twins collection. (history_stats would count telemetry,
      // a scan of the whole collection on FerretDB, which also holds back its WAL checkpoints meanwhile.)
      s->get_twin("readyz-probe");
      if (options.ready && !options.ready()) throw ApiError(503, "pipeline not ready");
      json(res, R"({"status":"ready"})");
    });
    route("GET", "/metrics", Role::kViewer, [this](auto&, auto& res, auto&) {
      std::string text = options.metrics ? options.metrics->prometheus_text() : "";
      text +=
          "# HELP fleettwin_api_stream_clients Live-stream clients connected\n"
          "# TYPE fleettwin_api_stream_clients gauge\nfleettwin_api_stream_clients " +
          std::to_string(hub.subscribers()) +
          "\n# HELP fleettwin_api_stream_dropped_total Live-stream clients dropped for reading too slowly\n"
          "# TYPE fleettwin_api_stream_dropped_total counter\nfleettwin_api_stream_dropped_total " +
          std::to_string(hub.dropped()) +
          "\n# HELP fleettwin_api_stream_queued_bytes Live-stream event bytes waiting to be sent\n"
          "# TYPE fleettwin_api_stream_queued_bytes gauge\nfleettwin_api_stream_queued_bytes " +
          std::to_string(hub.queued_bytes()) + "\n";
      res.set_content(text, "text/plain; version=0.0.4");
    });
    route("GET", "/api/v1/openapi.yaml", Role::kViewer,
          [](auto&, auto& res, auto&) { res.set_content(openapi_yaml(), "application/yaml"); });
    route("GET", "/api/v1/whoami", Role::kViewer, [this](const httplib::Request& req, auto& res, auto&) {
      std::string out;
      codec::JsonWriter(out)
          .begin_object()
          .key("role")
          .string(to_string(*options.tokens.role_of(request_token(req))))
          .end_object();
      json(res, out);
    });

    route("GET", "/api/v1/twins", Role::kViewer, [this](const httplib::Request& req, auto& res, auto&) {
      store::TwinQuery q;
      q.limit = int_param(req, "limit", 100, 1, 10000);
      if (auto f = query(req, "filter"); f && !f->empty()) q.filter = store::parse_filter(*f);
      q.sort = query(req, "sort").value_or("");
      const auto sort = store::parse_sort(q.sort);
      q.after_id = query(req, "cursor").value_or("");
      if (!q.after_id.empty()) store::decode_twin_cursor(sort, q.after_id);  // 400 on a bad cursor
      if (auto st = query(req, "status"); st && !st->empty()) {
        if (*st != "ok" && *st != "warning" && *st != "anomaly" && *st != "unknown")
          throw ApiError(400, "status: expected ok, warning, anomaly or unknown");
        q.status = core::health_status_from_string(*st);
      }
      auto twins = stores.acquire()->list_twins(q);
      std::string out = "{\"items\":[";
      for (std::size_t i = 0; i < twins.size(); ++i) out += (i ? "," : "") + codec::twin_to_json(twins[i]);
      out += "],\"next_cursor\":";
      if (static_cast<int64_t>(twins.size()) == q.limit) {
        codec::append_json_string(out, store::twin_cursor(sort, twins.back()));
      } else {
        out += "null";
      }
      json(res, out + "}");
    });
    route("GET", "/api/v1/twins/{car}", Role::kViewer, [this](auto&, auto& res, const auto& p) {
      json(res, codec::twin_to_json(twin_or_404(*stores.acquire(), p[0])));
    });
    route("GET", "/api/v1/twins/{car}/history", Role::kViewer,
          [this](const httplib::Request& req, auto& res, const auto& p) { history(req, res, p[0]); });
    route("GET", "/api/v1/twins/{car}/commands", Role::kViewer,
          [this](const httplib::Request& req, auto& res, const auto& p) {
            auto s = stores.acquire();
            twin_or_404(*s, p[0]);
            std::string out = "{\"items\":[";
            bool first = true;
            for (const auto& c : s->commands(p[0], int_param(req, "limit", 50, 1, 1000))) {
              out += (first ? "" : ",") + codec::command_to_json(c);
              first = false;
            }
            json(res, out + "]}");
          });
    route("PATCH", "/api/v1/twins/{car}/desired", Role::kOperator,
          [this](const httplib::Request& req, auto& res, const auto& p) { set_desired(req, res, p[0]); });
    route("GET", "/api/v1/commands/{id}", Role::kViewer, [this](auto&, auto& res, const auto& p) {
      auto c = stores.acquire()->get_command(p[0]);
      if (!c) throw ApiError(404, "no command '" + p[0] + "'");
      json(res, codec::command_to_json(*c));
    });
    route("GET", "/api/v1/alerts", Role::kViewer, [this](const httplib::Request& req, auto& res, auto&) {
      const std::string status = query(req, "status").value_or("all");
      if (status != "all" && status != "open" && status != "acknowledged" && status != "cleared")
        throw ApiError(400, "status: expected all, open, acknowledged or cleared");
      const std::string car = query(req, "car").value_or("");
      const std::string kind = query(req, "kind").value_or("");
      const int64_t limit = int_param(req, "limit", 200, 1, 10000);
      // Read more than asked: the status and kind filters apply after the store's newest-first read.
      auto alerts = stores.acquire()->alerts(car, status == "all" && kind.empty() ? limit : limit * 10);
      std::string out = "{\"items\":[";
      int64_t n = 0;
      for (const auto& a : alerts) {
        if (n == limit) break;
        if (!kind.empty() && a.kind != kind) continue;
        if (status == "open" && (!a.raised || a.acknowledged)) continue;
        if (status == "acknowledged" && !a.acknowledged) continue;
        if (status == "cleared" && a.raised) continue;
        out += (n++ ? "," : "") + codec::alert_to_json(a);
      }
      json(res, out + "]}");
    });
    route("POST", "/api/v1/alerts/{id}/ack", Role::kOperator, [this](auto&, auto& res, const auto& p) {
      auto s = stores.acquire();
      if (!s->ack_alert(p[0])) throw ApiError(404, "no alert '" + p[0] + "'");
      auto a = s->get_alert(p[0]);
      if (a) hub.publish("alert", codec::alert_to_json(*a));
      json(res, a ? codec::alert_to_json(*a) : "{}");
    });
    route("GET", "/api/v1/fleet/summary", Role::kViewer, [this](auto&, auto& res, auto&) {
      auto s = stores.acquire();
      const auto sum = s->fleet_summary(wall_ms());
      std::string out;
      codec::JsonWriter w(out);
      w.begin_object().key("cars").integer(sum.cars).key("online").integer(sum.online);
      w.key("by_status").begin_object();
      for (const char* st : {"ok", "warning", "anomaly", "unknown"}) {
        auto it = sum.by_status.find(st);
        w.key(st).integer(it == sum.by_status.end() ? 0 : it->second);
      }
      w.end_object().key("messages_last_minute").integer(sum.messages_last_minute);
      const auto latest = latest_sample();
      w.key("throughput").raw(sample_json(latest));
      w.key("top").begin_array();
      for (const auto& c : s->top_by_score(10))
        w.begin_object()
            .key("car")
            .string(c.car)
            .key("score")
            .number(c.score)
            .key("threshold")
            .number(c.threshold)
            .key("status")
            .string(c.status)
            .end_object();
      w.end_array().end_object();
      json(res, out);
    });
    route("GET", "/api/v1/fleet/throughput", Role::kViewer,
          [this](const httplib::Request& req, auto& res, auto&) {
            const int64_t seconds = int_param(req, "seconds", 300, 1, 600);
            std::lock_guard lock(throughput_mu);
            std::string out = "{\"items\":[";
            const auto n = std::min<std::size_t>(throughput.size(), static_cast<std::size_t>(seconds));
            for (std::size_t i = throughput.size() - n; i < throughput.size(); ++i)
              out += (i + n == throughput.size() ? "" : ",") + sample_json(throughput[i]);
            json(res, out + "]}");
          });
    route("GET", "/api/v1/fleet/positions", Role::kViewer,
          [this](auto&, auto& res, auto&) { positions(res); });
    route("GET", "/api/v1/models", Role::kViewer, [this](auto&, auto& res, auto&) { models(res); });
    // Admin: the shadow model becomes the active one (the score stage swaps models between batches).
    route("POST", "/api/v1/models/promote", Role::kAdmin, [this](auto&, auto& res, auto&) { promote(res); });
    route("GET", "/api/v1/stream", Role::kViewer, [this](auto&, auto& res, auto&) { stream(res); });
  }

  // ---- handlers ---------------------------------------------------------------------------------------

  void history(const httplib::Request& req, httplib::Response& res, const std::string& car) {
    auto s = stores.acquire();
    const auto twin = twin_or_404(*s, car);
    std::vector<std::size_t> signals;
    const std::string names = query(req, "signal").value_or("speed");
    for (std::size_t pos = 0; pos <= names.size();) {
      const auto comma = std::min(names.find(',', pos), names.size());
      const std::string name = names.substr(pos, comma - pos);
      pos = comma + 1;
      if (name.empty()) continue;
      const auto idx = core::signal_index(name);
      if (!idx) throw ApiError(400, "signal: unknown signal '" + name + "'");
      signals.push_back(*idx);
    }
    // Default window: the hour before the car's last message (device time; a fast simulation runs ahead of
    // the wall clock, so "now" would show nothing).
    const int64_t last = twin.last_seen > 0 ? twin.last_seen + 1 : wall_ms();
    const int64_t to = int_param(req, "to", last, 0, INT64_MAX / 2);
    const int64_t from = int_param(req, "from", to - 3600000, 0, INT64_MAX / 2);
    if (from >= to) throw ApiError(400, "from must be before to");
    const int64_t step = int_param(req, "step", auto_step(from, to, 600), 1, INT64_MAX / 2);
    if ((to - from) / step > 100000) throw ApiError(400, "step too small: at most 100000 points");
    const auto rows = s->history(car, from, to, 200000);
    const auto series = downsample(rows, signals, from, to, step);
    std::string out = series_to_json(series);
    out.pop_back();
    out += ",\"car\":";
    codec::append_json_string(out, car);
    out += ",\"threshold\":";
    codec::append_json_double(out, twin.health.threshold);
    out += ",\"alerts\":[";
    bool first = true;
    for (const auto& a : s->alerts(car, 1000)) {
      if (a.ts < from || a.ts >= to) continue;
      out += (first ? "" : ",") + codec::alert_to_json(a);
      first = false;
    }
    json(res, out + "]}");
  }

  void set_desired(const httplib::Request& req, httplib::Response& res, const std::string& car) {
    const auto twin = twin_or_404(*stores.acquire(), car);
    if (!options.log) throw ApiError(503, "no log configured: commands cannot be sent");
    const auto commands = commands_for_settings(twin, req.body, wall_ms(), command_sequence.fetch_add(16));
    int64_t failed = 0;
    {
      std::lock_guard lock(producer_mu);
      if (!producer) producer = options.log->producer();
      for (const auto& c : commands)
        producer->send(log::OutRecord{core::topics::kCommands, c.car, codec::command_to_json(c), {}, -1, 0});
      failed = producer->flush(std::chrono::seconds(10));
    }
    if (failed > 0) throw ApiError(503, "the log did not accept the commands; try again");
    std::string out;
    codec::JsonWriter w(out);
    w.begin_object().key("commands").begin_array();
    for (const auto& c : commands) w.string(c.id);
    w.end_array().end_object();
    json(res, out, commands.empty() ? 200 : 202);
  }

  void positions(httplib::Response& res) {
    // Every car's position and health for the map. Cached for 2 s: a 100,000-car listing takes a while, and
    // every dashboard polls it.
    std::lock_guard lock(positions_mu);
    if (positions_cache.empty() || SteadyClock::now() - positions_at > std::chrono::seconds(2)) {
      auto s = stores.acquire();
      std::string ids, lat, lon, status, online;
      store::TwinQuery q;
      q.limit = 10000;
      for (;;) {
        auto page = s->list_twins(q);
        for (const auto& t : page) {
          const char* sep = ids.empty() ? "" : ",";
          ids += sep;
          codec::append_json_string(ids, t.id);
          lat += sep;
          codec::append_json_double(lat, t.reported.lat);
          lon += sep;
          codec::append_json_double(lon, t.reported.lon);
          status += sep;
          status += status_code(t.health.status);
          online += sep;
          online += t.online ? "1" : "0";
        }
        if (static_cast<int64_t>(page.size()) < q.limit) break;
        q.after_id = page.back().id;
      }
      positions_cache = "{\"ids\":[" + ids + "],\"lat\":[" + lat + "],\"lon\":[" + lon + "],\"status\":[" +
                        status + "],\"online\":[" + online + "]}";
      positions_at = SteadyClock::now();
    }
    json(res, positions_cache);
  }

  void models(httplib::Response& res) {
    // Model metadata files written by the train stage (one JSON document per model version).
    std::vector<std::pair<fs::file_time_type, std::string>> docs;
    std::error_code ec;
    if (!options.models_dir.empty() && fs::is_directory(options.models_dir, ec)) {
      for (const auto& e : fs::directory_iterator(options.models_dir, ec)) {
        if (e.path().extension() != ".json") continue;
        std::ifstream in(e.path());
        std::stringstream ss;
        ss << in.rdbuf();
        if (codec::valid_json_value(ss.str())) docs.emplace_back(e.last_write_time(ec), ss.str());
      }
    }
    std::sort(docs.begin(), docs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string out = "{\"items\":[";
    bool first = true;
    {
      // The models the score stage uses, from fleet.models: "anomaly" is active, "anomaly.shadow" shadow.
      std::lock_guard lock(models_mu);
      for (const auto& [key, meta] : model_meta) {
        out += first ? "{\"key\":" : ",{\"key\":";
        first = false;
        codec::append_json_string(out, key);
        out += ",\"role\":";
        codec::append_json_string(out, key == "anomaly"          ? "active"
                                       : key == "anomaly.shadow" ? "shadow"
                                                                 : key);
        out += ",\"meta\":" + meta + "}";
      }
    }
    for (const auto& doc : docs) {
      out += (first ? "" : ",") + doc.second;
      first = false;
    }
    json(res, out + "]}");
  }

  void promote(httplib::Response& res) {
    std::string artifact, meta;
    {
      std::lock_guard lock(models_mu);
      artifact = shadow_artifact;
      if (auto it = model_meta.find("anomaly.shadow"); it != model_meta.end()) meta = it->second;
    }
    if (artifact.empty()) throw ApiError(409, "no shadow model on fleet.models to promote");
    if (!options.log) throw ApiError(503, "no log to publish the model to (start the API with --kafka)");
    int64_t failed = 0;
    {
      std::lock_guard lock(producer_mu);
      if (!producer) producer = options.log->producer();
      producer->send(log::OutRecord{core::topics::kModels, "anomaly", artifact, {}, -1, 0});
      failed = producer->flush(std::chrono::seconds(10));
    }
    if (failed != 0) throw ApiError(503, "the log did not take the model; nothing changed");
    json(res, "{\"promoted\":" + meta + "}");
    res.status = 202;
  }

  void stream(httplib::Response& res) {
    auto sub = hub.subscribe();
    if (!sub) throw ApiError(503, "too many live-stream clients; try again later");
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Accel-Buffering", "no");
    const std::string hello = "retry: 2000\nevent: hello\ndata: " + sample_json(latest_sample()) + "\n\n";
    res.set_chunked_content_provider(
        "text/event-stream",
        [sub, hello, sent_hello = false](std::size_t, httplib::DataSink& sink) mutable {
          if (!sent_hello) {
            sent_hello = true;
            return sink.write(hello.data(), hello.size());
          }
          // Block for the next event (httplib calls again as soon as this returns); a comment line every
          // 15 s keeps proxies from closing an idle stream and tells us when the client has gone.
          if (auto frame = sub->pop(std::chrono::seconds(15)))
            return sink.write(frame->data(), frame->size());
          if (sub->closed()) return false;
          static constexpr char kKeepAlive[] = ": keep-alive\n\n";
          return sink.write(kKeepAlive, sizeof kKeepAlive - 1);
        },
        [sub](bool) { sub->close(); });
  }

  // ---- background: throughput samples, new alerts, twin changes ---------------------------------------

  ThroughputSample latest_sample() {
    std::lock_guard lock(throughput_mu);
    return throughput.empty() ? ThroughputSample{wall_ms()} : throughput.back();
  }

  ThroughputSample take_sample(const ThroughputSample& prev, double seconds) {
    ThroughputSample s;
    s.ts = wall_ms();
    if (!options.metrics) return s;
    const auto& m = *options.metrics;
    s.published = m.value("fleettwin_sim_published_total");
    s.processed = m.value("fleettwin_records_in_total{stage=\"process\"}");
    s.stored = m.value("fleettwin_telemetry_stored_total");
    s.dlq = m.value("fleettwin_dlq_total{stage=\"process\"}");
    s.online = m.value("fleettwin_cars_online");
    for (const char* stage : {"bridge", "process", "twin", "score", "sink", "train"})
      s.lag += m.value(std::string("fleettwin_consumer_lag{stage=\"") + stage + "\"}");
    if (prev.ts > 0 && seconds > 0)
      s.msgs_per_s = static_cast<double>(s.processed - prev.processed) / seconds;
    return s;
  }

  void run_background() {
    std::unique_ptr<log::Consumer> twins;
    if (options.log) {
      try {
        twins = options.log->consumer("fleettwin.api." + std::to_string(::getpid()) + "." +
                                      std::to_string(wall_ms()));
        twins->subscribe({core::topics::kTwins, core::topics::kModels});
      } catch (const std::exception& e) {
        spdlog::warn("api: no twin-change events ({})", e.what());
        twins.reset();
      }
    }
    std::optional<std::set<std::string>> seen_alerts;
    ThroughputSample prev;
    auto last = SteadyClock::now();
    auto next_tick = last;
    // Car -> its newest twin document this second, kept raw: only the (at most 1000) published ones are
    // parsed, and nothing is kept while no live client listens.
    std::unordered_map<std::string, std::string> changed;
    while (!stopping.load()) {
      if (twins) {
        try {
          // Reading and committing promptly matters: the embedded log holds its producers back for a group
          // that falls behind, and this group must never slow the pipeline.
          auto batch = twins->poll(5000, std::chrono::milliseconds(100));
          const bool listened = hub.subscribers() > 0;
          for (const auto& r : batch) {
            if (r.topic == core::topics::kModels) {
              keep_model(r.key, r.value);
            } else if (listened && (changed.size() < 1000 || changed.count(r.key))) {
              changed[r.key] = r.value;
            }
          }
          if (!batch.empty()) twins->commit(log::next_offsets(batch));
        } catch (const std::exception& e) {
          spdlog::warn("api: twin changes: {}", e.what());
          twins.reset();
        }
      } else {
        std::unique_lock lock(stop_mu);
        stop_cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping.load(); });
      }
      if (SteadyClock::now() < next_tick) continue;
      next_tick += std::chrono::seconds(1);
      const auto now = SteadyClock::now();
      auto sample = take_sample(prev, std::chrono::duration<double>(now - last).count());
      prev = sample;
      last = now;
      {
        std::lock_guard lock(throughput_mu);
        throughput.push_back(sample);
        while (throughput.size() > 600) throughput.pop_front();
      }
      hub.publish("throughput", sample_json(sample));
      if (!changed.empty()) {
        std::string out = "{\"items\":[";
        bool first = true;
        core::Twin t;
        for (const auto& [car, doc] : changed) {
          if (!codec::twin_from_json(doc, t, nullptr)) continue;
          out += (first ? "" : ",") + twin_event_json(t);
          first = false;
        }
        hub.publish("twins", out + "]}");
        changed.clear();
      }
      poll_alerts(seen_alerts);
    }
    if (twins) twins->close();
  }

  /// Keeps the metadata of a model artifact from fleet.models. The artifact format (src/ml/training.h) starts
  /// with "FTMODEL1", a u64 little-endian length and the metadata JSON; reading that header here keeps the
  /// API independent of the ML library and its weights.
  void keep_model(const std::string& key, std::string_view artifact) {
    if (artifact.size() < 16 || artifact.substr(0, 8) != "FTMODEL1") return;
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
      n = n << 8 | static_cast<unsigned char>(artifact[8 + static_cast<std::size_t>(i)]);
    if (n > artifact.size() - 16) return;
    const std::string meta(artifact.substr(16, n));
    if (!codec::valid_json_value(meta)) return;
    std::lock_guard lock(models_mu);
    model_meta[key] = meta;
    if (key == "anomaly.shadow") shadow_artifact = std::string(artifact);
  }

  static std::string twin_event_json(const core::Twin& t) {
    std::string out;
    codec::JsonWriter(out)
        .begin_object()
        .key("id")
        .string(t.id)
        .key("status")
        .string(core::to_string(t.health.status))
        .key("score")
        .number(t.health.score)
        .key("online")
        .boolean(t.online)
        .key("lat")
        .number(t.reported.lat)
        .key("lon")
        .number(t.reported.lon)
        .key("seq")
        .integer(t.reported.seq)
        .key("delta")
        .integer(static_cast<int64_t>(t.delta().size()))
        .end_object();
    return out;
  }

  void poll_alerts(std::optional<std::set<std::string>>& seen) {
    if (!options.open_store) return;
    try {
      auto s = stores.acquire();
      std::set<std::string> now;
      for (const auto& a : s->alerts("", 200)) {
        now.insert(a.id);
        if (seen && !seen->count(a.id)) hub.publish("alert", codec::alert_to_json(a));
      }
      seen = std::move(now);
    } catch (const std::exception& e) {
      spdlog::debug("api: alert poll: {}", e.what());
    }
  }
};

ApiServer::ApiServer(ApiOptions options) : _impl(std::make_unique<Impl>(std::move(options))) {}

ApiServer::~ApiServer() { stop(); }

void ApiServer::start() {
  auto& impl = *_impl;
  const std::size_t threads = impl.options.threads + impl.options.max_stream_clients;
  impl.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl.http.set_payload_max_length(1 << 20);
  impl.register_routes();
  const std::string web_dir = impl.options.web_dir;
  if (!web_dir.empty() && fs::is_regular_file(fs::path(web_dir) / "index.html")) {
    impl.http.set_mount_point("/", web_dir);
  } else {
    impl.http.Get("/", [web_dir](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<!doctype html><title>fleettwin</title><p>The dashboard is not built" +
              (web_dir.empty() ? std::string() : " (looked in " + web_dir + ")") +
              ". Run <code>scripts/build</code>, which builds <code>web/</code> with npm. The REST "
              "API is at <a href=\"/api/v1/openapi.yaml\">/api/v1</a>.</p>",
          "text/html");
    });
  }
  impl.http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty())
      res.set_content(error_json(res.status == 404 ? "no such route" : "error"), "application/json");
  });
  // Debian's libcpp-httplib is compiled with a listen backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed when
  // the library was built): when a burst of clients connects at once (every dashboard reconnecting its
  // live stream after a restart), the kernel drops the handshakes beyond it and the clients retry after 1,
  // 3, 7, 15 s... Linux lets listen() be called again on a listening socket to change its backlog, so the
  // socket is caught while httplib creates it and widened after the bind. Only SO_REUSEADDR, not httplib's
  // default SO_REUSEPORT: with it a second `fleettwin up` on the same port started without an error, and the
  // kernel shared the connections between the two (as the embedded registry does, registry_server.cc).
  impl.http.set_socket_options([&impl](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    impl.listen_socket = sock;
  });
  if (impl.options.port == 0) {
    impl.bound_port = impl.http.bind_to_any_port(impl.options.host);
  } else {
    impl.bound_port = impl.http.bind_to_port(impl.options.host, impl.options.port) ? impl.options.port : -1;
  }
  if (impl.bound_port <= 0)
    throw std::runtime_error("cannot listen on " + impl.options.host + ":" +
                             std::to_string(impl.options.port));
  constexpr int kListenBacklog = 1024;  // the kernel caps it at net.core.somaxconn
  if (impl.listen_socket >= 0 && ::listen(impl.listen_socket, kListenBacklog) != 0)
    spdlog::warn("api: could not widen the listen backlog: {}", std::strerror(errno));
  impl.listener = std::thread([&impl] { impl.http.listen_after_bind(); });
  impl.background = std::thread([&impl] { impl.run_background(); });
}

void ApiServer::stop() {
  auto& impl = *_impl;
  {
    std::lock_guard lock(impl.stop_mu);
    if (impl.stopping.exchange(true)) return;
  }
  impl.stop_cv.notify_all();
  impl.hub.close_all();
  if (impl.background.joinable()) impl.background.join();
  impl.http.stop();
  if (impl.listener.joinable()) impl.listener.join();
}

int ApiServer::port() const { return _impl->bound_port; }

std::string ApiServer::url() const {
  std::string host = _impl->options.host;
  if (host == "0.0.0.0" || host == "::" || host.empty()) host = "127.0.0.1";
  return "http://" + host + ":" + std::to_string(_impl->bound_port);
}

std::vector<RouteInfo> ApiServer::routes() {
  Impl impl{ApiOptions{}};
  impl.register_routes();
  std::vector<RouteInfo> out;
  for (const auto& r : impl.route_defs) out.push_back({r.method, r.path});
  return out;
}

}  // namespace fleettwin::api
