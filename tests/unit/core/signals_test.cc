#include <gtest/gtest.h>

#include <set>

#include "core/signals.h"
#include "core/twin.h"

using namespace fleettwin::core;

TEST(Signals, CatalogHasTheEighteenCardataSignalsInCsvOrder) {
  ASSERT_EQ(kSignals.size(), 18u);
  EXPECT_EQ(kSignals[kCoolantTemp].name, "coolant_temp");
  EXPECT_EQ(kSignals[kControlUnitFirmware].name, "control_unit_firmware");
  std::set<std::string_view> names;
  for (const auto& s : kSignals) {
    names.insert(s.name);
    EXPECT_LT(s.min, s.max) << s.name;
  }
  EXPECT_EQ(names.size(), 18u);
  EXPECT_EQ(kSignals[kTirePressure11].type, SignalType::kInt);
}

TEST(Signals, IndexByName) {
  EXPECT_EQ(signal_index("speed"), kSpeed);
  EXPECT_EQ(signal_index("accelerometer_2_2_value"), kAccelerometer22);
  EXPECT_FALSE(signal_index("sped").has_value());
}

TEST(Signals, CarIds) {
  EXPECT_TRUE(valid_car_id("car-00042"));
  EXPECT_TRUE(valid_car_id("A_b-9"));
  EXPECT_FALSE(valid_car_id(""));
  EXPECT_FALSE(valid_car_id("car/1"));
  EXPECT_FALSE(valid_car_id("car 1"));
  EXPECT_FALSE(valid_car_id(std::string(65, 'a')));
}

TEST(Twin, DeltaListsDesiredKeysNotYetReported) {
  Twin t;
  t.desired = {{"max_speed", "30"}, {"mode", "\"eco\""}};
  t.reported_settings = {{"max_speed", "30"}, {"mode", "\"sport\""}};
  EXPECT_EQ(t.delta(), std::vector<std::string>{"mode"});
  t.reported_settings["mode"] = "\"eco\"";
  EXPECT_TRUE(t.delta().empty());
}

TEST(Twin, HealthStatusStrings) {
  for (auto s : {HealthStatus::kOk, HealthStatus::kWarning, HealthStatus::kAnomaly, HealthStatus::kUnknown})
    EXPECT_EQ(health_status_from_string(to_string(s)), s);
}
