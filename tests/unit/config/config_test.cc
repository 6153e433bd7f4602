#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace fleettwin::config {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Expects `f` to throw a ConfigError whose message contains every one of `parts`.
template <typename F>
void expect_error(F f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(ConfigDocs, MatchCheckedInReference) {
  EXPECT_EQ(Config::docs_markdown(), read_file(fs::path(FLEETTWIN_SOURCE_DIR) / "docs" / "configuration.md"))
      << "regenerate with: fleettwin config docs > docs/configuration.md";
}

TEST(ConfigKeys, OneListInDeclarationOrderWithUniqueNames) {
  const auto& all = all_keys();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front(), &keys::data_dir);
  EXPECT_EQ(all.back(), &keys::sites);
  std::set<std::string> names;
  for (const KeySpec* k : all) {
    EXPECT_TRUE(names.insert(k->name()).second) << "declared twice: " << k->name();
    EXPECT_EQ(find_key(k->name()), k);
    EXPECT_FALSE(k->description().empty()) << k->name();
  }
  EXPECT_EQ(find_key("sim.carz"), nullptr);
}

TEST(ConfigKeys, EveryDefaultIsValid) {
  Config c;
  for (const KeySpec* k : all_keys()) EXPECT_NO_THROW(c.set(*k, k->default_text(), "default")) << k->name();
}

TEST(Config, TypedDefaults) {
  const Config c;
  EXPECT_EQ(c.get(keys::sim_cars), 10000);
  EXPECT_EQ(c.get(keys::sim_interval), milliseconds(10'000));
  EXPECT_EQ(c.get(keys::stage_batch_window), milliseconds(50));
  EXPECT_FALSE(c.get(keys::sim_fast));
  EXPECT_TRUE(c.get(keys::ml_skip_unfamiliar));
  EXPECT_DOUBLE_EQ(c.get(keys::ml_quantile), 0.995);
  EXPECT_EQ(c.get(keys::http_listen), "127.0.0.1:8080");
  EXPECT_EQ(c.text(keys::sim_interval), "10s");
  EXPECT_EQ(c.text(keys::twin_offline_after), "60s");
}

TEST(Config, SetValidatesAgainstTheKey) {
  Config c;
  c.set(keys::sim_cars, "100", "--cars");
  EXPECT_EQ(c.get(keys::sim_cars), 100);
  c.set(keys::sim_fast, "yes", "--fast");
  EXPECT_TRUE(c.get(keys::sim_fast));
  EXPECT_EQ(c.text(keys::sim_fast), "true");
  c.set(keys::sim_duration, "2m", "--duration");
  EXPECT_EQ(c.get(keys::sim_duration), milliseconds(120'000));
  EXPECT_EQ(c.text(keys::sim_duration), "2m");
  c.set(keys::ml_quantile, "0.9", "test");
  EXPECT_DOUBLE_EQ(c.get(keys::ml_quantile), 0.9);

  expect_error([&] { c.set(keys::sim_cars, "lots", "--cars"); }, {"--cars", "sim.cars", "whole number"});
  expect_error([&] { c.set(keys::sim_cars, "0", "--cars"); }, {"below the minimum 1"});
  expect_error([&] { c.set(keys::mqtt_qos, "2", "--qos"); }, {"above the maximum 1"});
  expect_error([&] { c.set(keys::ml_quantile, "nan", "test"); }, {"expected a number"});
  expect_error([&] { c.set(keys::sim_fast, "maybe", "--fast"); }, {"expected true or false"});
  expect_error([&] { c.set(keys::sim_interval, "10 parsecs", "--interval"); }, {"unknown duration unit"});
  expect_error([&] { c.set(keys::sim_interval, "0", "--interval"); }, {"below the minimum 1 ms"});
  EXPECT_EQ(c.get(keys::sim_cars), 100);  // a rejected value leaves the last good one
}

TEST(Config, SetNamedKnowsKeysAndPassesKafkaPropertiesThrough) {
  Config c;
  c.set_named("sim.cars", "7", "config.yaml");
  EXPECT_EQ(c.get(keys::sim_cars), 7);
  c.set_named("kafka.brokers", "k:9092", "--kafka-set");
  EXPECT_EQ(c.get(keys::kafka_brokers), "k:9092");
  EXPECT_TRUE(c.passthrough().empty());
  c.set_named("kafka.security.protocol", "SSL", "--kafka-set");
  EXPECT_EQ(c.passthrough().at("kafka.security.protocol"), "SSL");
  expect_error([&] { c.set_named("sim.carz", "10", "config.yaml"); },
               {"config.yaml", "unknown configuration key 'sim.carz'"});
  expect_error([&] { c.set_named("kafka.", "x", "--kafka-set"); }, {"unknown configuration key"});
}

TEST(Config, YamlNestingMirrorsTheDots) {
  const auto dir = fs::temp_directory_path() / ("config_test." + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "good.yaml") << "sim:\n  cars: 100\n  fast: on\nml:\n  quantile: 0.99\ndata_dir: /x\n";
  std::ofstream(dir / "typo.yaml") << "sim:\n  carz: 10\n";
  std::ofstream(dir / "list.yaml") << "sim:\n  cars: [1, 2]\n";
  Config c;
  c.load_yaml((dir / "good.yaml").string());
  EXPECT_EQ(c.get(keys::sim_cars), 100);
  EXPECT_TRUE(c.get(keys::sim_fast));
  EXPECT_DOUBLE_EQ(c.get(keys::ml_quantile), 0.99);
  EXPECT_EQ(c.get(keys::data_dir), "/x");
  expect_error([&] { c.load_yaml((dir / "typo.yaml").string()); }, {"typo.yaml", "sim.carz"});
  expect_error([&] { c.load_yaml((dir / "list.yaml").string()); }, {"'sim.cars' must be a scalar"});
  expect_error([&] { c.load_yaml((dir / "missing.yaml").string()); }, {"cannot read the config file"});
  fs::remove_all(dir);
}

TEST(Config, YamlTextAndKeysThatAreNotNames) {
  Config c;
  c.load_yaml_text("sim: {cars: 12}\n", "inline.yaml");
  EXPECT_EQ(c.get(keys::sim_cars), 12);
  // Found by fuzzing (tests/fuzz/corpus/config_yaml/crash-*): a key that is a map or a list threw yaml-cpp's
  // bad conversion instead of a ConfigError naming the file.
  expect_error([&] { c.load_yaml_text("sim: {{cars: 5}: 1}\n", "odd.yaml"); },
               {"odd.yaml", "a key under 'sim' is not a name"});
  expect_error([&] { c.load_yaml_text("? [a, b]\n: c\n", "odd.yaml"); }, {"odd.yaml", "is not a name"});
  expect_error([&] { c.load_yaml_text("sim: [\n", "broken.yaml"); }, {"broken.yaml:"});
}

TEST(Config, EnvironmentNamesAreUpperCaseWithUnderscores) {
  ::setenv("FLEETTWIN_SIM_CARS", "42", 1);
  ::setenv("FLEETTWIN_ML_SKIP_UNFAMILIAR", "false", 1);
  Config c;
  c.load_env();
  ::unsetenv("FLEETTWIN_SIM_CARS");
  ::unsetenv("FLEETTWIN_ML_SKIP_UNFAMILIAR");
  EXPECT_EQ(c.get(keys::sim_cars), 42);
  EXPECT_FALSE(c.get(keys::ml_skip_unfamiliar));
  ::setenv("FLEETTWIN_SIM_CARS", "-1", 1);
  expect_error([&] { c.load_env(); }, {"environment FLEETTWIN_SIM_CARS", "below the minimum"});
  ::unsetenv("FLEETTWIN_SIM_CARS");
}

TEST(Config, RecordReadsCollectsTheKeysReadWhileSet) {
  Config c;
  std::set<std::string> reads;
  (void)c.get(keys::sim_cars);  // before: not recorded
  c.record_reads(&reads);
  (void)c.get(keys::sim_interval);
  (void)c.get(keys::sim_fast);
  (void)c.text(keys::log_level);
  c.set(keys::sim_seed, "3", "test");  // setting is not reading
  c.record_reads(nullptr);
  (void)c.get(keys::ml_quantile);  // after: not recorded
  EXPECT_EQ(reads, (std::set<std::string>{"sim.interval", "sim.fast", "log_level"}));
}

TEST(ParseDuration, UnitsAndPlainSeconds) {
  EXPECT_EQ(parse_duration_ms("250ms"), 250);
  EXPECT_EQ(parse_duration_ms("10s"), 10'000);
  EXPECT_EQ(parse_duration_ms("10"), 10'000);
  EXPECT_EQ(parse_duration_ms("1.5s"), 1'500);
  EXPECT_EQ(parse_duration_ms("2m"), 120'000);
  EXPECT_EQ(parse_duration_ms("2min"), 120'000);
  EXPECT_EQ(parse_duration_ms("1h"), 3'600'000);
  EXPECT_EQ(parse_duration_ms("1d"), 86'400'000);
  expect_error([] { parse_duration_ms(""); }, {"empty duration"});
  expect_error([] { parse_duration_ms("-1s"); }, {"is not a duration"});
  expect_error([] { parse_duration_ms("3 weeks"); }, {"unknown duration unit"});
}

TEST(ParseHostPort, SplitsAtTheLastColon) {
  EXPECT_EQ(parse_host_port("127.0.0.1:8081", "--listen"), (std::pair<std::string, int>{"127.0.0.1", 8081}));
  EXPECT_EQ(parse_host_port("::1:0", "--listen"), (std::pair<std::string, int>{"::1", 0}));
  expect_error([] { parse_host_port("localhost", "--listen"); }, {"--listen", "expected HOST:PORT"});
  expect_error([] { parse_host_port(":80", "--listen"); }, {"expected HOST:PORT"});
  expect_error([] { parse_host_port("h:65536", "--http"); }, {"--http"});
  expect_error([] { parse_host_port("h:8x", "--http"); }, {"--http"});
}

}  // namespace
}  // namespace fleettwin::config
