#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace fleettwin::core {

/// A monotonically increasing counter. Lock-free; any thread.
class Counter {
 public:
  void add(int64_t n = 1) { _v.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return _v.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> _v{0};
};

/// A value that goes up and down. Lock-free; any thread.
class Gauge {
 public:
  void set(int64_t v) { _v.store(v, std::memory_order_relaxed); }
  void add(int64_t n) { _v.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return _v.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> _v{0};
};

/// A metric's Prometheus name and help, declared once (core/metric_catalog.h for those other modules read).
struct MetricDef {
  const char* name;
  const char* help;
};

/// Named counters and gauges of every stage, exported in the Prometheus text format. Registration takes a
/// lock and returns a reference that stays valid for the registry's life; updates are lock-free.
class Metrics {
 public:
  Counter& counter(const std::string& name, const std::string& help, const std::string& labels = "");
  Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels = "");
  Counter& counter(const MetricDef& def, const std::string& labels = "") {
    return counter(def.name, def.help, labels);
  }
  Gauge& gauge(const MetricDef& def, const std::string& labels = "") {
    return gauge(def.name, def.help, labels);
  }
  /// A gauge of a fractional quantity (a PSI, a ratio) held as an integer in units of 10^-decimals
  /// (Gauge stays one lock-free integer) and exported as the decimal it stands for.
  Gauge& fixed_point_gauge(const MetricDef& def, const std::string& labels, int decimals);
  /// Value of a metric (0 while nobody registered it), without registering it.
  int64_t value(const MetricDef& def, const std::string& labels = "") const {
    return value(labels.empty() ? std::string(def.name) : std::string(def.name) + "{" + labels + "}");
  }
  /// Value of a registered metric (labels included in `name`, e.g. `x{stage="process"}`), or 0: for tests
  /// and tools that observe the process from outside, as a Prometheus scrape would. Code names the metric's
  /// MetricDef and keeps the Counter or Gauge it returns.
  int64_t value(const std::string& name_with_labels) const;
  /// Every label set registered for a metric (e.g. `signal="speed"`) with its value, in registration order.
  std::vector<std::pair<std::string, int64_t>> samples(const MetricDef& def) const;
  /// Sum of a metric over every label set registered (e.g. DLQ records of every stage), or 0.
  int64_t sum(const MetricDef& def) const;
  /// Prometheus text exposition format 0.0.4.
  std::string prometheus_text() const;

 private:
  struct Entry {
    std::string name, help, labels;
    bool is_counter;
    int decimals = 0;  // gauge exported as value / 10^decimals
    Counter counter;
    Gauge gauge;
  };
  mutable std::mutex _mu;
  std::deque<Entry> _entries;  // deque: stable addresses
};

}  // namespace fleettwin::core
