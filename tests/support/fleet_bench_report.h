#pragma once

// The checks every `fleettwin bench fleet` test makes of the JSON report: the exactness check (nothing lost,
// nothing stored twice, every twin at its car's last message, every command answered) and the roles'
// accounting. One place, so a store or a scenario added later asserts the same contract.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace fleettwin::testing {

inline int64_t report_int(simdjson::dom::element e, const char* key) {
  int64_t v = -1;
  EXPECT_EQ(e[key].get(v), simdjson::SUCCESS) << key;
  return v;
}

inline double report_double(simdjson::dom::element e, const char* key) {
  double v = -1;
  EXPECT_EQ(e[key].get(v), simdjson::SUCCESS) << key;
  return v;
}

/// Cars as asked, at least `min_published` messages, and the exactness check passed. `out`: the run's
/// output, shown on failure.
inline void expect_exact_run(simdjson::dom::element e, int64_t cars, int64_t min_published,
                             const std::string& out) {
  EXPECT_EQ(report_int(e, "cars"), cars);
  const int64_t published = report_int(e, "published");
  EXPECT_GE(published, min_published) << "the cars published for the whole run";
  EXPECT_GE(report_int(e, "stored"), published);
  EXPECT_EQ(report_int(e, "lost"), 0) << out;
  EXPECT_EQ(report_int(e, "duplicates"), 0) << out;
  EXPECT_EQ(report_int(e, "twins_behind"), 0) << out;
  EXPECT_EQ(report_int(e, "commands_answered"), report_int(e, "commands_sent")) << out;
}

/// `roles` has `count` entries, none of which exited on its own (and each used CPU, when asked).
inline void expect_roles(simdjson::dom::element e, std::size_t count, bool each_used_cpu,
                         const std::string& text) {
  simdjson::dom::object roles;
  ASSERT_EQ(e["roles"].get(roles), simdjson::SUCCESS);
  EXPECT_EQ(roles.size(), count) << text;
  for (auto [name, usage] : roles) {
    if (each_used_cpu) {
      double cpu = 0;
      EXPECT_EQ(usage["cpu_s"].get(cpu), simdjson::SUCCESS);
      EXPECT_GT(cpu, 0) << name;
    }
    int64_t crashes = -1;
    EXPECT_EQ(usage["crashes"].get(crashes), simdjson::SUCCESS);
    EXPECT_EQ(crashes, 0) << name << " exited on its own";
  }
}

}  // namespace fleettwin::testing
