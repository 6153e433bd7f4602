// `fleettwin query summary|top|hourly|alerts|twins|aggregates`: the store's analytics and the twin filter
// language from the command line, over the SQLite store of a data dir or, with --mongo / --postgres, a
// MongoDB/FerretDB or PostgreSQL store. Output is one JSON document per line, for scripts and for comparing
// the backends.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

#include "api/aggregate_view.h"
#include "app/store_factory.h"
#include "cli/commands.h"
#include "codec/json.h"
#include "core/clock.h"
#include "store/filter.h"

namespace fleettwin::cli {

namespace {

/// The flag values of `fleettwin query ...` that are not configuration keys.
struct QueryFlags {
  int64_t now_ms = 0, top = 10, from_ms = 0, to_ms = 0, limit = 100;
  std::string car, signal, filter, sort, after, aggregate, format = "json";
};

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + '"';
}

/// `ms` as UTC, 2026-01-01T00:00:00Z (windows start on whole seconds).
std::string utc(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// `query aggregates`: the stored windows of one aggregate, one JSON document per window (the API's window
/// object with "aggregate"), or with --format table a header and one aligned row per window.
void print_aggregates(store::TwinStore& s, const QueryFlags& f) {
  store::AggregateQuery q;
  q.aggregate = f.aggregate;
  q.group = f.car;
  if (f.from_ms > 0) q.from_ms = f.from_ms;
  if (f.to_ms > 0) q.to_ms = f.to_ms;
  q.limit = static_cast<std::size_t>(f.limit);
  const auto rows = s.aggregates(q);
  std::vector<std::string> columns;  // every value name, in order of first appearance
  for (const auto& r : rows)
    for (const auto& v : r.values)
      if (std::find(columns.begin(), columns.end(), v.first) == columns.end()) columns.push_back(v.first);
  const auto value = [](const store::AggregateRow& r, const std::string& c) {
    for (const auto& v : r.values)
      if (v.first == c) return v.second;
    return std::nan("");
  };
  if (f.format == "table") {
    std::printf("%-20s %-24s %-24s %8s %5s %10s", "group", "start", "end", "revision", "final", "count");
    for (const auto& c : columns) std::printf(" %18s", c.c_str());
    std::printf("\n");
    for (const auto& r : rows) {
      std::printf("%-20s %-24s %-24s %8u %5s %10lld", r.group.c_str(), utc(r.window_start_ms).c_str(),
                  utc(r.window_end_ms).c_str(), r.revision, r.final ? "yes" : "no", (long long)r.count);
      for (const auto& c : columns) std::printf(" %18s", num(value(r, c)).c_str());
      std::printf("\n");
    }
  } else {
    for (const auto& r : rows) {
      std::string values;
      for (const auto& c : columns)
        values += (values.empty() ? "" : ",") + quoted(c) + ":" + num(value(r, c));
      std::printf(
          "{\"aggregate\":%s,\"group\":%s,\"start\":%lld,\"end\":%lld,\"revision\":%u,\"final\":%s,\"count\":"
          "%lld,"
          "\"values\":{%s}}\n",
          quoted(r.aggregate).c_str(), quoted(r.group).c_str(), (long long)r.window_start_ms,
          (long long)r.window_end_ms, r.revision, r.final ? "true" : "false", (long long)r.count,
          values.c_str());
    }
  }
  // Like `query twins`: a full page says so on stderr, stdout stays one window per line.
  if (rows.size() == q.limit)
    std::fprintf(stderr, "limit reached: --limit %lld windows\n", (long long)f.limit);
}

int run_query(const std::string& what, const QueryFlags& f, Config& config) {
  const int64_t to = f.to_ms > 0 ? f.to_ms : core::wall_clock_ms();
  const int64_t from = f.from_ms > 0 ? f.from_ms : to - int64_t{24} * 3'600'000;
  // Parse before connecting: a bad filter is the user's to fix, whatever the store.
  store::TwinQuery q;
  const auto catalog = app::configured_catalog(config);  // the stores' signal names
  if (what == "twins") {
    try {
      if (!f.filter.empty()) q.filter = store::parse_filter(f.filter, *catalog);
      store::parse_sort(f.sort, *catalog);
    } catch (const store::FilterError& e) {
      std::fprintf(stderr, "fleettwin query twins: %s\n", e.what());
      return 2;
    }
    q.sort = f.sort;
    q.after_id = f.after;
    q.limit = f.limit;
  }
  if (what == "aggregates" && !api::valid_aggregate_name(f.aggregate)) {
    std::fprintf(stderr, "fleettwin query aggregates: bad aggregate name (expected [a-z0-9_]{1,64})\n");
    return 2;
  }
  auto s = app::open_existing_store(config, catalog);
  if (what == "aggregates") {
    print_aggregates(*s, f);
  } else if (what == "summary") {
    const auto r = s->fleet_summary(f.now_ms > 0 ? f.now_ms : core::wall_clock_ms());
    std::string by;
    for (const auto& [k, v] : r.by_status)
      by += (by.empty() ? "" : ",") + quoted(k) + ":" + std::to_string(v);
    std::printf("{\"cars\":%lld,\"by_status\":{%s},\"online\":%lld,\"messages_last_minute\":%lld}\n",
                (long long)r.cars, by.c_str(), (long long)r.online, (long long)r.messages_last_minute);
  } else if (what == "top") {
    for (const auto& c : s->top_by_score(f.top)) {
      std::printf("{\"car\":%s,\"score\":%s,\"threshold\":%s,\"status\":%s}\n", quoted(c.car).c_str(),
                  num(c.score).c_str(), num(c.threshold).c_str(), quoted(c.status).c_str());
    }
  } else if (what == "hourly") {
    for (const auto& h : s->hourly(f.car, f.signal, from, to)) {
      std::printf("{\"hour_ms\":%lld,\"min\":%s,\"avg\":%s,\"max\":%s,\"count\":%lld}\n",
                  (long long)h.hour_ms, num(h.min).c_str(), num(h.avg).c_str(), num(h.max).c_str(),
                  (long long)h.count);
    }
  } else if (what == "alerts") {
    for (const auto& a : s->alerts_per_hour(from, to)) {
      std::printf("{\"hour_ms\":%lld,\"kind\":%s,\"count\":%lld}\n", (long long)a.hour_ms,
                  quoted(a.kind).c_str(), (long long)a.count);
    }
  } else if (what == "twins") {
    const auto page = s->list_twins(q);
    for (const auto& t : page) std::printf("%s\n", codec::twin_to_json(t, *catalog).c_str());
    // The cursor of the next page, on stderr so stdout stays one twin per line.
    if (static_cast<int64_t>(page.size()) == q.limit) {
      std::fprintf(stderr, "next page: --after %s\n",
                   store::twin_cursor(store::parse_sort(q.sort, *catalog), page.back()).c_str());
    }
  }
  return 0;
}

}  // namespace

void add_store_commands(CommandLine& cl) {
  auto flags = std::make_shared<QueryFlags>();
  auto* query = cl.app().add_subcommand("query", "Analytics and filtered twin listings from the store");
  query->require_subcommand(1);
  auto range = [&](CLI::App* cmd) {
    cmd->add_option("--from", flags->from_ms, "Start, ms since the epoch (default: 24 h before --to)");
    cmd->add_option("--to", flags->to_ms, "End (exclusive), ms since the epoch (default: now)");
  };
  auto* summary =
      query->add_subcommand("summary", "Cars by health status, online cars, messages in the last minute");
  summary->add_option("--now", flags->now_ms,
                      "The 'now' of the last minute, ms since the epoch (default: now)");
  auto* top = query->add_subcommand("top", "Cars with the highest anomaly score");
  top->add_option("-n,--count", flags->top, "How many")->check(CLI::Range(1, 100000));
  auto* hourly = query->add_subcommand("hourly", "Hourly min/avg/max/count of one signal of one car");
  hourly->add_option("car", flags->car, "Car id")->required();
  hourly->add_option("signal", flags->signal, "Signal name (e.g. speed, coolant_temp) or score")->required();
  range(hourly);
  auto* alerts = query->add_subcommand("alerts", "Raised alerts per hour and kind");
  range(alerts);
  auto* twins = query->add_subcommand(
      "twins", "Twins matching a filter, e.g. 'health.status == \"anomaly\" && reported.speed > 30'");
  twins->add_option("--filter", flags->filter,
                    "Filter expression (fields: see docs; && || ! == != < <= > >=)");
  twins->add_option("--sort", flags->sort, "Field to sort by, '-' prefix for descending (default: id)");
  twins->add_option("--after", flags->after, "Paging cursor printed after a full page");
  twins->add_option("--limit", flags->limit, "Rows at most")->check(CLI::Range(1, 1000000));
  auto* aggregates = query->add_subcommand(
      "aggregates", "Stored window aggregates of one aggregate (e.g. summary_1h), of one car or every group");
  aggregates->add_option("name", flags->aggregate, "Aggregate name (aggregate.definitions)")->required();
  aggregates->add_option("--car", flags->car, "Car id, or fleet / an attribute value (default: every group)");
  aggregates->add_option("--from", flags->from_ms,
                         "Windows starting at or after, ms since the epoch (default: all)");
  aggregates->add_option("--to", flags->to_ms, "Windows starting before, ms since the epoch (default: all)");
  aggregates->add_option("--limit", flags->limit, "Windows at most")->check(CLI::Range(1, 1000000));
  aggregates->add_option("--format", flags->format, "json (one window per line) or table")
      ->check(CLI::IsMember({"json", "table"}));
  for (auto* cmd : {summary, top, hourly, alerts, twins, aggregates}) {
    add_store_flags(cl.flags(), cmd);
    const std::string what = cmd->get_name();
    cl.add(cmd, [flags, what](Config& config, std::atomic<int>&) { return run_query(what, *flags, config); });
  }
}

}  // namespace fleettwin::cli
