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

TEST(Metrics, SumAddsEveryLabelSetOfOneMetric) {
  // The overview's DLQ figure: the dead letters of every stage, not only the process stage's.
  Metrics m;
  const MetricDef dlq{"fleettwin_dlq_total", "dead letters"};
  EXPECT_EQ(m.sum(dlq), 0);
  m.counter(dlq, "stage=\"process\"").add(3);
  m.counter(dlq, "stage=\"sink\"").add(2);
  m.counter("fleettwin_dlq_totally_else", "not the same metric").add(100);
  EXPECT_EQ(m.sum(dlq), 5);
}
