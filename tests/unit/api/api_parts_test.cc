// The API's pure parts: token lists, the bounded live-stream hub, downsampling, settings -> commands.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "api/auth.h"
#include "api/event_hub.h"
#include "api/history.h"
#include "api/settings.h"
#include "support/temp_dir.h"

namespace fleettwin::api {
namespace {

TEST(TokenTable, ParsesRolesAndRefusesBadEntries) {
  const auto t = TokenTable::parse(" viewer:abcdefgh , operator:12345678,admin:zzzzzzzz,");
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.role_of("abcdefgh"), Role::kViewer);
  EXPECT_EQ(t.role_of("12345678"), Role::kOperator);
  EXPECT_EQ(t.role_of("zzzzzzzz"), Role::kAdmin);
  EXPECT_EQ(t.role_of("abcdefg"), std::nullopt);
  EXPECT_TRUE(TokenTable::parse("").empty());
  EXPECT_THROW(TokenTable::parse("root:abcdefgh"), TokenError);
  EXPECT_THROW(TokenTable::parse("viewer:short"), TokenError);
  EXPECT_THROW(TokenTable::parse("viewerabcdefgh"), TokenError);
  EXPECT_THROW(TokenTable::parse("viewer:abcdefgh,admin:abcdefgh"), TokenError);
}

TEST(TokenTable, GeneratedAdminTokenIsKept) {
  const fleettwin::testing::TempDir tmp("token");
  const auto dir = tmp.path() / "data";  // not there yet: the token's directory is created with it
  const auto token = load_or_create_admin_token(dir.string());
  EXPECT_EQ(token.size(), 32u);
  EXPECT_EQ(load_or_create_admin_token(dir.string()), token);
  EXPECT_EQ(std::filesystem::status(dir / "api-token").permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
}

TEST(EventHub, SlowSubscriberIsDroppedNotBuffered) {
  EventHub hub(2, 100);  // bytes: three frames of ~27 bytes fit, a fourth does not
  auto fast = hub.subscribe();
  auto slow = hub.subscribe();
  EXPECT_EQ(hub.subscribe(), nullptr);  // at the client limit
  for (int i = 0; i < 5; ++i) {
    hub.publish("tick", std::to_string(i));
    ASSERT_TRUE(fast->pop(std::chrono::milliseconds(0)).has_value());
  }
  EXPECT_TRUE(slow->closed());
  EXPECT_FALSE(fast->closed());
  EXPECT_EQ(hub.dropped(), 1u);
  EXPECT_EQ(hub.subscribers(), 1u);
  EXPECT_EQ(hub.queued_bytes(), 0u);
  hub.publish("tick", "x");
  const auto frame = fast->pop(std::chrono::milliseconds(0));
  ASSERT_TRUE(frame);
  EXPECT_NE(frame->find("event: tick\ndata: x\n\n"), std::string::npos);
  hub.close_all();
  EXPECT_FALSE(fast->pop(std::chrono::milliseconds(0)));
  EXPECT_TRUE(fast->closed());
}

TEST(Downsample, MeansPerBucketAndMaxScore) {
  std::vector<store::TelemetryRow> rows;
  for (int k = 0; k < 7; ++k) {
    store::TelemetryRow r;
    r.t.ts = 1000 + k * 100;
    r.t.values[core::kSpeed] = k;
    if (k != 1) r.score = 10 - k;
    rows.push_back(r);
  }
  const auto s = downsample(rows, {core::kSpeed}, 1000, 1700, 300);
  EXPECT_EQ(s.ts, (std::vector<int64_t>{1000, 1300, 1600}));
  EXPECT_EQ(s.values[0], (std::vector<double>{1, 4, 6}));
  EXPECT_EQ(s.score, (std::vector<std::optional<double>>{10, 7, 4}));
  EXPECT_EQ(s.count, (std::vector<int64_t>{3, 3, 1}));
  EXPECT_EQ(auto_step(0, 1000, 600), 2);
  EXPECT_EQ(auto_step(0, 10, 600), 1);
  EXPECT_EQ(series_to_json(downsample({}, {core::kSpeed}, 0, 10, 5), *catalog::builtin()),
            R"({"from":0,"to":10,"step":5,"ts":[],"signals":{"speed":[]},"score":[],"count":[]})");
}

TEST(Downsample, AbsentReadingsAreNotAveragedAndAnEmptyBucketIsNull) {
  std::vector<store::TelemetryRow> rows;
  for (int k = 0; k < 4; ++k) {
    store::TelemetryRow r;
    r.t.ts = k * 100;
    r.t.values[core::kSpeed] = k < 2 ? core::kAbsent : 10.0 * k;  // only the second bucket carries speed
    r.t.values[core::kCoolantTemp] = k == 1 ? core::kAbsent : 90.0;
    rows.push_back(r);
  }
  const auto s = downsample(rows, {core::kSpeed, core::kCoolantTemp}, 0, 400, 200);
  ASSERT_EQ(s.values[0].size(), 2u);
  EXPECT_TRUE(std::isnan(s.values[0][0]));
  EXPECT_EQ(s.values[0][1], 25);
  EXPECT_EQ(s.values[1], (std::vector<double>{90, 90}));
  EXPECT_EQ(s.count, (std::vector<int64_t>{2, 2}));
  const std::string json = series_to_json(s, *catalog::builtin());
  EXPECT_NE(json.find(R"("speed":[null,25])"), std::string::npos) << json;
}

TEST(Settings, OneCommandPerChangedSetting) {
  core::Twin twin;
  twin.id = "car-1";
  twin.desired["speed_limit_kmh"] = "90";
  auto cmds =
      commands_for_settings(twin, R"({"speed_limit_kmh":90,"firmware_version":12,"service":true})", 5000, 7);
  ASSERT_EQ(cmds.size(), 2u);  // the speed limit did not change
  EXPECT_EQ(cmds[0].name, "update_firmware");
  EXPECT_EQ(cmds[0].params_json, R"({"version":12})");
  EXPECT_EQ(cmds[0].id, "car-1:update_firmware:5000:7");
  EXPECT_EQ(cmds[1].name, "schedule_service");
  EXPECT_EQ(cmds[1].params_json, "{}");
  EXPECT_EQ(cmds[1].car, "car-1");
  EXPECT_THROW(commands_for_settings(twin, R"({"firmware_version":1.5})", 0, 0), ApiError);
  EXPECT_THROW(commands_for_settings(twin, R"({"service":false})", 0, 0), ApiError);
  EXPECT_THROW(commands_for_settings(twin, R"([1])", 0, 0), ApiError);
}

// Issue 17: a 1 MB body of one repeated key made 70,000 commands that never expired.
TEST(Settings, ARepeatedSettingIsRefusedAndEveryCommandExpires) {
  core::Twin twin;
  twin.id = "car-1";
  std::string body = "{";
  for (int i = 0; i < 1000; ++i) body += std::string(i ? "," : "") + R"("service":true)";
  EXPECT_THROW(commands_for_settings(twin, body + "}", 0, 0), ApiError);
  const auto cmds = commands_for_settings(twin, R"({"service":true})", 5000, 0);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].expires, 5000 + core::kDefaultCommandTtlMs);
}

}  // namespace
}  // namespace fleettwin::api
