#include <gtest/gtest.h>

#include "core/metrics.h"

using namespace fleettwin::core;

TEST(Metrics, CountersAndGaugesExportOneFamilyEach) {
  Metrics m;
  m.counter("fleettwin_records_in_total", "records read", "stage=\"process\"").add(3);
  m.counter("fleettwin_records_in_total", "records read", "stage=\"twin\"").add(2);
  m.gauge("fleettwin_lag", "records behind").set(7);
  EXPECT_EQ(m.value("fleettwin_records_in_total{stage=\"process\"}"), 3);
  EXPECT_EQ(m.value("fleettwin_lag"), 7);
  const std::string text = m.prometheus_text();
  EXPECT_NE(text.find("# TYPE fleettwin_records_in_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("fleettwin_records_in_total{stage=\"twin\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("fleettwin_lag 7\n"), std::string::npos);
  // one HELP line per family
  EXPECT_EQ(text.find("# HELP fleettwin_records_in_total"), text.rfind("# HELP fleettwin_records_in_total"));
}

TEST(Metrics, SameNameAndLabelsIsTheSameCounter) {
  Metrics m;
  m.counter("x", "h").add(1);
  m.counter("x", "h").add(1);
  EXPECT_EQ(m.value("x"), 2);
}
