#include "unit/store/store_contract.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <thread>
#include <vector>

namespace fleettwin::store {

void StoreContract::SetUp() {
  static std::atomic<int> counter{0};
  // Short, lower-case, digits and '_' only: valid as a directory and as a database name everywhere
  // (FerretDB 1.24's SQLite backend panicked on a longer mixed-case name).
  _space = "ftc_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  store = GetParam().open(_space, nullptr);
}

void StoreContract::TearDown() {
  store.reset();
  GetParam().drop(_space);
}

namespace {

constexpr int64_t kT0 = 1'767'225'600'000;  // 2026-01-01T00:00:00Z, an hour boundary
constexpr int64_t kHour = 3'600'000;

/// Telemetry of `car` with every signal derived from seq, so any row can be recomputed by a check.
core::Telemetry message(const std::string& car, int64_t seq, int64_t ts) {
  core::Telemetry t;
  t.car = car;
  t.seq = seq;
  t.ts = ts;
  t.lat = 52.5 + static_cast<double>(seq % 100) * 1e-3;
  t.lon = 13.4 - static_cast<double>(seq % 100) * 1e-3;
  for (size_t i = 0; i < core::kSignalCount; ++i) {
    t.values[i] = core::kSignals[i].type == core::SignalType::kInt
                      ? static_cast<double>(20 + (seq + i) % 9)
                      : 0.5 * static_cast<double>(i) + 0.01 * seq;
  }
  return t;
}

core::Twin make_twin(const std::string& car, int64_t seq, int64_t version, double speed = 10,
                     core::HealthStatus status = core::HealthStatus::kOk, double score = 0.5) {
  core::Twin t;
  t.id = car;
  t.version = version;
  t.reported = message(car, seq, kT0 + seq * 1000);
  t.reported.values[core::kSpeed] = speed;
  t.has_reported = true;
  t.desired = {{"max_speed", "25"}};
  t.reported_settings = {{"max_speed", "20"}};
  for (size_t i = 0; i < core::kSignalCount; ++i) t.metadata[i] = t.reported.ts - static_cast<int64_t>(i) * 7;
  t.health = core::Health{score, 2.5, status, t.reported.ts - 100, {"speed"}, "m-1"};
  t.online = seq % 2 == 0;
  t.first_seen = kT0;
  t.last_seen = t.reported.ts;
  t.messages = seq;
  t.distance_km = 0.25 * static_cast<double>(seq);
  return t;
}

core::Alert make_alert(const std::string& car, const std::string& kind, int64_t ts, bool raised) {
  return core::Alert{car + ":" + kind + ":" + std::to_string(ts),
                     car,
                     kind,
                     raised,
                     ts,
                     3.0,
                     2.5,
                     {"speed", "coolant_temp"},
                     "m-1",
                     false,
                     "",
                     "",
                     0};
}

core::Command make_command(const std::string& id, const std::string& car, int64_t created,
                           std::string status) {
  return core::Command{id, car, "set", R"({"max_speed":25})", created, created + 60000, std::move(status)};
}

TEST_P(StoreContract, TwinRoundTripsAndOlderUpdatesAreRefused) {
  core::Twin t5 = make_twin("car-1", 5, 5);
  EXPECT_EQ(store->write({{}, {t5}, {}, {}}).twins_applied, 1);
  ASSERT_EQ(store->get_twin("car-1"), t5);
  WriteResult r = store->write({{}, {make_twin("car-1", 3, 9)}, {}, {}});
  EXPECT_EQ(r.twins_applied, 0);
  EXPECT_EQ(r.twins_stale, 1);
  EXPECT_EQ(store->get_twin("car-1"), t5);
  // Same seq, higher version (e.g. a command ack): applied. Same seq and version again: refused.
  core::Twin v6 = make_twin("car-1", 5, 6, 77);
  EXPECT_EQ(store->write({{}, {v6}, {}, {}}).twins_applied, 1);
  EXPECT_EQ(store->write({{}, {v6}, {}, {}}).twins_stale, 1);
  core::Twin t7 = make_twin("car-1", 7, 7);
  EXPECT_EQ(store->write({{}, {t7}, {}, {}}).twins_applied, 1);
  EXPECT_EQ(store->get_twin("car-1"), t7);
  EXPECT_EQ(store->get_twin("nope"), std::nullopt);
}

TEST_P(StoreContract, SeqGuardHoldsUnderTwoRacingWriters) {
  // Two instances (two sink copies) write the same cars' updates in different orders; every car must end
  // at its newest update whatever the interleaving, including the race on the first insert.
  constexpr int kCars = 12;
  constexpr int kSeqs = 40;
  auto writer = [&](unsigned seed) {
    auto s = open_another();
    std::vector<core::Twin> updates;
    for (int c = 0; c < kCars; ++c) {
      for (int q = 1; q <= kSeqs; ++q) updates.push_back(make_twin("race-" + std::to_string(c), q, q));
    }
    std::shuffle(updates.begin(), updates.end(), std::mt19937(seed));
    for (size_t i = 0; i < updates.size(); i += 16) {
      WriteBatch b;
      b.twins.assign(updates.begin() + static_cast<std::ptrdiff_t>(i),
                     updates.begin() + static_cast<std::ptrdiff_t>(std::min(updates.size(), i + 16)));
      s->write(b);
    }
  };
  std::thread a(writer, 1u);
  std::thread b(writer, 2u);
  a.join();
  b.join();
  for (int c = 0; c < kCars; ++c) {
    auto t = store->get_twin("race-" + std::to_string(c));
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(*t, make_twin("race-" + std::to_string(c), kSeqs, kSeqs));
  }
}

TEST_P(StoreContract, ReplayingABatchChangesNothing) {
  WriteBatch b;
  for (int c = 0; c < 5; ++c) {
    std::string car = "rp-" + std::to_string(c);
    for (int q = 1; q <= 20; ++q) {
      b.telemetry.push_back(
          {message(car, q, kT0 + q * 1000), q % 3 == 0 ? std::optional(0.1 * q) : std::nullopt});
    }
    b.twins.push_back(make_twin(car, 20, 20));
    b.alerts.push_back(make_alert(car, "anomaly", kT0 + 5000, true));
    b.commands.push_back(make_command("cmd-" + car, car, kT0, "delivered"));
  }
  WriteResult first = store->write(b);
  EXPECT_EQ(first.telemetry_inserted, 100);
  EXPECT_EQ(first.twins_applied, 5);
  auto history_before = store->history("rp-2", 0, INT64_MAX);
  WriteResult again = store->write(b);
  EXPECT_EQ(again.telemetry_inserted, 0);
  EXPECT_EQ(again.telemetry_duplicates, 100);
  EXPECT_EQ(again.twins_applied, 0);
  EXPECT_EQ(again.twins_stale, 5);
  EXPECT_EQ(store->history("rp-2", 0, INT64_MAX), history_before);
  ASSERT_EQ(history_before.size(), 20u);
  EXPECT_EQ(history_before[2], (TelemetryRow{message("rp-2", 3, kT0 + 3000), 0.1 * 3}));
  HistoryStats st = store->history_stats();
  EXPECT_EQ(st.rows, 100);
  EXPECT_EQ(st.distinct, 100);
  EXPECT_EQ(st.cars, 5);
  EXPECT_EQ(st.twins, 5);
  EXPECT_EQ(store->alerts().size(), 5u);
  EXPECT_EQ(store->commands().size(), 5u);
  auto max_seq = store->max_seq_per_car();
  ASSERT_EQ(max_seq.size(), 5u);
  EXPECT_EQ(max_seq[0], (std::pair<std::string, int64_t>{"rp-0", 20}));
}

TEST_P(StoreContract, OldestPerCarIsEachCarsLowestStoredSeqWithItsTs) {
  WriteBatch b;
  for (int64_t q = 10; q >= 3; --q)
    b.telemetry.push_back({message("old-1", q, kT0 + q * 1000), std::nullopt});
  for (int64_t q : {6, 5}) b.telemetry.push_back({message("old-2", q, kT0 + q * 500), std::nullopt});
  store->write(b);
  const auto oldest = store->oldest_per_car();
  ASSERT_EQ(oldest.size(), 2u);
  EXPECT_EQ(oldest[0].car, "old-1");
  EXPECT_EQ(oldest[0].seq, 3);
  EXPECT_EQ(oldest[0].ts, kT0 + 3000);
  EXPECT_EQ(oldest[1].car, "old-2");
  EXPECT_EQ(oldest[1].seq, 5);
  EXPECT_EQ(oldest[1].ts, kT0 + 2500);
}

TEST_P(StoreContract, NanSignalsRoundTripAsNan) {
  core::Telemetry t = message("nan-1", 1, kT0);
  t.values[core::kSpeed] = std::numeric_limits<double>::quiet_NaN();
  store->write({{{t, std::nullopt}}, {}, {}, {}});
  auto h = store->history("nan-1", kT0, kT0 + 1);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_TRUE(std::isnan(h[0].t.values[core::kSpeed]));
  EXPECT_EQ(h[0].t.values[core::kCoolantTemp], t.values[core::kCoolantTemp]);
  EXPECT_FALSE(h[0].score.has_value());
}

/// 30 twins with speeds, statuses and scores spread so filters and sorts have ties and gaps.
std::vector<core::Twin> fleet_of_twins() {
  std::vector<core::Twin> out;
  const core::HealthStatus statuses[] = {core::HealthStatus::kOk, core::HealthStatus::kWarning,
                                         core::HealthStatus::kAnomaly};
  for (int c = 0; c < 30; ++c) {
    char id[16];
    std::snprintf(id, sizeof id, "f-%02d", c);
    out.push_back(make_twin(id, 10 + c, 1, static_cast<double>((c * 7) % 11) * 5, statuses[c % 3],
                            static_cast<double>((c * 13) % 17) / 4));
  }
  out[4].health.score = std::numeric_limits<double>::quiet_NaN();
  return out;
}

TEST_P(StoreContract, FiltersMatchTheReferenceEvaluatorAndPage) {
  auto twins = fleet_of_twins();
  store->write({{}, twins, {}, {}});
  const char* filters[] = {
      R"(health.status == "anomaly" && reported.speed > 30)",
      R"(reported.speed >= 20 || !(connection.online == true))",
      R"(health.score > 1 && health.score <= 3.5)",
      R"(health.score != 2)",
      R"(!(health.score < 2))",
      R"(stats.messages < 20 && _id != "f-03" && health.model_version == "m-1")",
      R"(id >= "f-1" && id < "f-2")",
      R"(health.model_version == "'; DROP TABLE twins; --" || health.model_version == "$where")",
      R"(metadata.speed > 0 && connection.last_seen >= 1767225620000 && reported.ts < 1767225630000)",
  };
  for (const char* text : filters) {
    SCOPED_TRACE(text);
    Filter f = parse_filter(text);
    std::vector<std::string> expected;
    for (const auto& t : twins) {
      if (matches(f, t)) expected.push_back(t.id);
    }
    TwinQuery q;
    q.filter = f;
    q.limit = 1000;
    EXPECT_EQ(twin_ids(store->list_twins(q)), expected);
  }
  // Still there after the injection attempt.
  EXPECT_EQ(store->history_stats().twins, 30);

  // Paging by a field, descending, ties broken by id, in pages of 4: every matching twin exactly once.
  for (std::string sort : {"-reported.speed", "health.status", "reported.speed", "-_id"}) {
    SCOPED_TRACE(sort);
    TwinSort s = parse_sort(sort);
    std::vector<core::Twin> expected;
    for (const auto& t : twins) {
      if (t.online || t.messages > 30) expected.push_back(t);
    }
    std::stable_sort(expected.begin(), expected.end(), [&](const core::Twin& a, const core::Twin& b) {
      FilterValue va = twin_field_value(a, s.field);
      FilterValue vb = twin_field_value(b, s.field);
      if (va != vb) return s.descending ? vb < va : va < vb;
      return a.id < b.id;
    });
    if (s.by_id() && s.descending) continue;  // only ascending id paging is defined for the id sort
    TwinQuery q;
    q.filter = parse_filter("connection.online == true || stats.messages > 30");
    q.sort = sort;
    q.limit = 4;
    std::vector<std::string> got;
    for (int page = 0; page < 20; ++page) {
      auto items = store->list_twins(q);
      for (const auto& t : items) got.push_back(t.id);
      if (items.size() < 4) break;
      q.after_id = twin_cursor(s, items.back());
    }
    EXPECT_EQ(got, twin_ids(expected));
  }
  // The old status/online fields still combine with a filter.
  TwinQuery q;
  q.status = core::HealthStatus::kWarning;
  q.online = true;
  q.filter = parse_filter("reported.speed >= 0");
  for (const auto& t : store->list_twins(q)) {
    EXPECT_EQ(t.health.status, core::HealthStatus::kWarning);
    EXPECT_TRUE(t.online);
  }
}

TEST_P(StoreContract, AnalyticsGiveTheExpectedFigures) {
  auto twins = fleet_of_twins();
  WriteBatch b;
  b.twins = twins;
  // Car a-1: 3 hours of one message per 10 minutes; speed = seq, NaN at seq 4; score on even seqs.
  for (int q = 1; q <= 18; ++q) {
    core::Telemetry t = message("a-1", q, kT0 + (q - 1) * 600'000);
    t.values[core::kSpeed] = q == 4 ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(q);
    b.telemetry.push_back({t, q % 2 == 0 ? std::optional(0.5 * q) : std::nullopt});
  }
  // 7 messages of other cars in the last minute before now, 2 just outside it.
  const int64_t now = kT0 + 5 * kHour;
  for (int q = 1; q <= 9; ++q) {
    b.telemetry.push_back(
        {message("a-2", q, now - 70'000 + q * 10'000 - (q == 9 ? 10'000 : 0)), std::nullopt});
  }
  b.alerts = {make_alert("a-1", "anomaly", kT0 + 100, true),
              make_alert("a-1", "anomaly", kT0 + 200, false),
              make_alert("a-2", "anomaly", kT0 + 300, true),
              make_alert("a-2", "offline", kT0 + 400, true),
              make_alert("a-3", "anomaly", kT0 + kHour + 5, true),
              make_alert("a-3", "anomaly", kT0 + 3 * kHour, true)};
  store->write(b);

  FleetSummary s = store->fleet_summary(now);
  EXPECT_EQ(s.cars, 30);
  EXPECT_EQ(s.by_status, (std::map<std::string, int64_t>{{"anomaly", 10}, {"ok", 10}, {"warning", 10}}));
  EXPECT_EQ(s.online, 15);
  // a-2's messages at now-60s .. now-10s (q = 1..6, and q = 9 at now-10s? see above): ts in [now-60s, now).
  int64_t expected_last_minute = 0;
  for (const auto& r : b.telemetry) expected_last_minute += (r.t.ts >= now - 60'000 && r.t.ts < now) ? 1 : 0;
  EXPECT_EQ(s.messages_last_minute, expected_last_minute);
  EXPECT_GT(expected_last_minute, 3);

  auto top = store->top_by_score(5);
  std::vector<core::Twin> by_score = twins;
  std::stable_sort(by_score.begin(), by_score.end(), [](const core::Twin& x, const core::Twin& y) {
    if (std::isnan(x.health.score) != std::isnan(y.health.score)) return std::isnan(y.health.score);
    if (x.health.score != y.health.score) return x.health.score > y.health.score;
    return x.id < y.id;
  });
  ASSERT_EQ(top.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(top[i], (CarScore{by_score[i].id, by_score[i].health.score, 2.5,
                                std::string(core::to_string(by_score[i].health.status))}));
  }

  auto hours = store->hourly("a-1", "speed", kT0, kT0 + 3 * kHour);
  ASSERT_EQ(hours.size(), 3u);
  EXPECT_EQ(hours[0].hour_ms, kT0);
  EXPECT_EQ(hours[0].count, 5);  // seqs 1..6 without the NaN at 4
  EXPECT_EQ(hours[0].min, 1);
  EXPECT_EQ(hours[0].max, 6);
  EXPECT_DOUBLE_EQ(hours[0].avg, (1 + 2 + 3 + 5 + 6) / 5.0);
  EXPECT_EQ(hours[2], (HourlyAggregate{kT0 + 2 * kHour, 13, 15.5, 18, 6}));
  auto half = store->hourly("a-1", "score", kT0 + kHour, kT0 + kHour + 2'400'000);
  ASSERT_EQ(half.size(), 1u);
  EXPECT_EQ(half[0], (HourlyAggregate{kT0 + kHour, 4, 4.5, 5, 2}));  // seqs 8 and 10 (7..10 in range)
  EXPECT_TRUE(store->hourly("nobody", "speed", kT0, now).empty());
  EXPECT_THROW(store->hourly("a-1", "speed; DROP TABLE telemetry", kT0, now), std::invalid_argument);

  auto per_hour = store->alerts_per_hour(kT0, kT0 + 3 * kHour);
  EXPECT_EQ(per_hour, (std::vector<AlertsPerHour>{
                          {kT0, "anomaly", 2}, {kT0, "offline", 1}, {kT0 + kHour, "anomaly", 1}}));
}

TEST_P(StoreContract, CommandsAndAlertsRoundTrip) {
  WriteBatch b;
  b.commands = {make_command("c-1", "car-a", kT0 + 1, "pending"),
                make_command("c-2", "car-a", kT0 + 2, "pending"),
                make_command("c-3", "car-b", kT0 + 3, "pending")};
  core::Alert raised = make_alert("car-a", "anomaly", kT0 + 10, true);
  b.alerts = {raised};
  store->write(b);
  EXPECT_EQ(store->get_command("c-2"), b.commands[1]);
  EXPECT_EQ(store->get_command("none"), std::nullopt);
  auto a_cmds = store->commands("car-a");
  ASSERT_EQ(a_cmds.size(), 2u);
  EXPECT_EQ(a_cmds[0].id, "c-2");
  EXPECT_EQ(store->commands("", 2).size(), 2u);
  // Lifecycle: acked sticks; a replayed "delivered" does not undo it.
  store->write({{}, {}, {}, {make_command("c-1", "car-a", kT0 + 1, "acked")}});
  store->write({{}, {}, {}, {make_command("c-1", "car-a", kT0 + 1, "delivered")}});
  EXPECT_EQ(store->get_command("c-1")->status, "acked");

  EXPECT_EQ(store->get_alert(raised.id), raised);
  EXPECT_TRUE(store->ack_alert(raised.id));
  EXPECT_FALSE(store->ack_alert("no-such-alert"));
  EXPECT_TRUE(store->get_alert(raised.id)->acknowledged);
  // A clear of the same alert keeps the acknowledgement; a replayed raise does not undo the clear.
  core::Alert cleared = raised;
  cleared.raised = false;
  cleared.ts = kT0 + 20;
  store->write({{}, {}, {cleared}, {}});
  store->write({{}, {}, {raised}, {}});
  auto got = store->get_alert(raised.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->raised);
  EXPECT_EQ(got->ts, kT0 + 20);
  EXPECT_TRUE(got->acknowledged);
  EXPECT_EQ(store->alerts("car-a").size(), 1u);
  EXPECT_EQ(store->get_alert("none"), std::nullopt);
}

TEST_P(StoreContract, AlertFeedbackSurvivesLaterStatesAndReopening) {
  core::Alert raised = make_alert("car-a", "anomaly", kT0 + 10, true);
  core::Alert other = make_alert("car-b", "anomaly", kT0 + 11, true);
  core::Alert older_model = make_alert("car-c", "anomaly", kT0 + 12, true);
  older_model.model_version = "m-0";
  store->write({{}, {}, {raised, other, older_model}, {}});
  EXPECT_EQ(store->feedback_counts("m-1"), (core::FeedbackCounts{0, 0}));
  EXPECT_FALSE(store->set_alert_feedback("no-such-alert", core::kFeedbackFalse, "", kT0));
  ASSERT_TRUE(store->set_alert_feedback(raised.id, core::kFeedbackFalse, "first look", kT0 + 100));
  // A second label replaces the first.
  ASSERT_TRUE(
      store->set_alert_feedback(raised.id, core::kFeedbackConfirmed, "pump worn, \"replaced\"", kT0 + 200));
  ASSERT_TRUE(store->set_alert_feedback(other.id, core::kFeedbackFalse, "", kT0 + 300));
  ASSERT_TRUE(store->set_alert_feedback(older_model.id, core::kFeedbackConfirmed, "", kT0 + 400));
  // The sink writes the alert's clear (and replays its raise) after the label: the label stays.
  core::Alert cleared = raised;
  cleared.raised = false;
  cleared.ts = kT0 + 20;
  store->write({{}, {}, {cleared}, {}});
  store->write({{}, {}, {raised}, {}});
  // A restart: another instance on the same data.
  auto reopened = open_another();
  const auto got = reopened->get_alert(raised.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->raised);
  EXPECT_EQ(got->feedback, core::kFeedbackConfirmed);
  EXPECT_EQ(got->feedback_note, "pump worn, \"replaced\"");
  EXPECT_EQ(got->feedback_ts, kT0 + 200);
  bool listed = false;
  for (const auto& a : reopened->alerts("car-b"))
    if (a.id == other.id) listed = a.feedback == core::kFeedbackFalse;
  EXPECT_TRUE(listed) << "the label is shown with the alert in listings";
  EXPECT_EQ(reopened->feedback_counts("m-1"), (core::FeedbackCounts{1, 1}));
  EXPECT_EQ(reopened->feedback_counts("m-0"), (core::FeedbackCounts{1, 0}));
  EXPECT_EQ(reopened->feedback_counts("nobody"), (core::FeedbackCounts{0, 0}));
}

// Retention (TwinStore::enforce_retention): by event time, rows of SQLite and MongoDB, whole UTC days of
// PostgreSQL (a day partition goes once entirely older than the cutoff).
constexpr int64_t kDay = 24 * kHour;

/// The ts of every stored row of `car`, oldest first.
std::vector<int64_t> stored_ts(TwinStore& s, const std::string& car) {
  std::vector<int64_t> out;
  for (const auto& r : s.history(car, INT64_MIN, INT64_MAX)) out.push_back(r.t.ts);
  return out;
}

TEST_P(StoreContract, RetentionRemovesOlderHistoryOnlyAndIsIdempotent) {
  const bool by_day = GetParam().name == "postgres";
  const int64_t cutoff = kT0 + 3 * kDay + 6 * kHour;  // 06:00 of day 3
  // Per car: two rows on day 0, one on day 1 (days entirely older), one at 05:00 of day 3 (older, but on
  // the cutoff's day), one at the cutoff, one on day 4.
  const std::vector<int64_t> offsets{0,       kHour, kDay + kHour, 3 * kDay + 5 * kHour, 3 * kDay + 6 * kHour,
                                     4 * kDay};
  WriteBatch b;
  for (const std::string car : {"car-a", "car-b"}) {
    for (size_t i = 0; i < offsets.size(); ++i)
      b.telemetry.push_back({message(car, static_cast<int64_t>(1 + i), kT0 + offsets[i]), std::nullopt});
    b.twins.push_back(make_twin(car, 6, 1));
  }
  b.alerts = {make_alert("car-a", "anomaly", kT0 + 10, true)};  // older than the cutoff: not history
  store->write(b);

  const RetentionResult r = store->enforce_retention(cutoff);
  const std::vector<int64_t> kept = by_day ? std::vector<int64_t>{kT0 + offsets[3], cutoff, kT0 + 4 * kDay}
                                           : std::vector<int64_t>{cutoff, kT0 + 4 * kDay};
  EXPECT_EQ(stored_ts(*store, "car-a"), kept);
  EXPECT_EQ(stored_ts(*store, "car-b"), kept);
  EXPECT_EQ(r.removed, by_day ? 2 : 8);  // days 0 and 1, or 4 rows of each car
  EXPECT_EQ(r.oldest_ms, by_day ? kT0 + 3 * kDay : cutoff);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(store->get_twin("car-a"), b.twins[0]);
  EXPECT_EQ(store->get_twin("car-b"), b.twins[1]);
  EXPECT_EQ(store->get_alert(b.alerts[0].id), b.alerts[0]);

  // Idempotent; a replay of the kept rows is all duplicates; new rows go on arriving.
  const RetentionResult again = store->enforce_retention(cutoff);
  EXPECT_EQ(again.removed, 0);
  EXPECT_EQ(again.oldest_ms, r.oldest_ms);
  EXPECT_EQ(stored_ts(*store, "car-a"), kept);
  WriteBatch replay;
  for (size_t i = 4; i < offsets.size(); ++i)
    replay.telemetry.push_back(
        {message("car-a", static_cast<int64_t>(1 + i), kT0 + offsets[i]), std::nullopt});
  replay.telemetry.push_back({message("car-a", 7, kT0 + 5 * kDay), std::nullopt});
  const WriteResult w = store->write(replay);
  EXPECT_EQ(w.telemetry_inserted, 1);
  EXPECT_EQ(w.telemetry_duplicates, 2);
  // A late upload older than the cutoff, written after a run: the next run removes it (one row, or its
  // day's partition created again).
  store->write({{{message("car-b", 99, kT0 + 2), std::nullopt}}, {}, {}, {}});
  EXPECT_EQ(store->enforce_retention(cutoff).removed, 1);
  EXPECT_EQ(stored_ts(*store, "car-b"), kept);
}

TEST_P(StoreContract, RetentionOnAnEmptyStoreRemovesNothing) {
  const RetentionResult r = store->enforce_retention(kT0);
  EXPECT_EQ(r.removed, 0);
  EXPECT_EQ(r.oldest_ms, INT64_MAX);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(r.store, GetParam().name == "ferretdb" ? "mongo" : GetParam().name);
}

TEST_P(StoreContract, RetentionRemovesEveryOldRowBeyondOneBatch) {
  // More old rows than one delete statement takes (5,000): all go, over several statements.
  WriteBatch b;
  for (int64_t seq = 1; seq <= 6000; ++seq)
    b.telemetry.push_back({message("car-a", seq, kT0 + seq * 1000), std::nullopt});
  b.telemetry.push_back({message("car-a", 6001, kT0 + 2 * kDay), std::nullopt});
  store->write(b);
  const RetentionResult r = store->enforce_retention(kT0 + kDay + 1);
  EXPECT_EQ(stored_ts(*store, "car-a"), std::vector<int64_t>{kT0 + 2 * kDay});
  EXPECT_EQ(r.oldest_ms, kT0 + 2 * kDay);
  EXPECT_EQ(store->history_stats().rows, 1);
}

}  // namespace
}  // namespace fleettwin::store
