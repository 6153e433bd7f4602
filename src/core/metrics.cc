#include "core/metrics.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <map>

namespace fleettwin::core {

Counter& Metrics::counter(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(_mu);
  for (auto& e : _entries)
    if (e.is_counter && e.name == name && e.labels == labels) return e.counter;
  auto& e = _entries.emplace_back();
  e.name = name, e.help = help, e.labels = labels, e.is_counter = true;
  return e.counter;
}

Gauge& Metrics::gauge(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(_mu);
  for (auto& e : _entries)
    if (!e.is_counter && e.name == name && e.labels == labels) return e.gauge;
  auto& e = _entries.emplace_back();
  e.name = name, e.help = help, e.labels = labels, e.is_counter = false;
  return e.gauge;
}

Gauge& Metrics::fixed_point_gauge(const MetricDef& def, const std::string& labels, int decimals) {
  Gauge& g = gauge(def, labels);
  std::lock_guard lock(_mu);
  for (auto& e : _entries)
    if (&e.gauge == &g) e.decimals = decimals;
  return g;
}

int64_t Metrics::value(const std::string& name_with_labels) const {
  std::lock_guard lock(_mu);
  for (const auto& e : _entries) {
    std::string full = e.labels.empty() ? e.name : e.name + "{" + e.labels + "}";
    if (full == name_with_labels) return e.is_counter ? e.counter.value() : e.gauge.value();
  }
  return 0;
}

std::vector<std::pair<std::string, int64_t>> Metrics::samples(const MetricDef& def) const {
  std::lock_guard lock(_mu);
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& e : _entries)
    if (e.name == def.name) out.emplace_back(e.labels, e.is_counter ? e.counter.value() : e.gauge.value());
  return out;
}

int64_t Metrics::sum(const MetricDef& def) const {
  std::lock_guard lock(_mu);
  int64_t total = 0;
  for (const auto& e : _entries) {
    if (e.name == def.name) total += e.is_counter ? e.counter.value() : e.gauge.value();
  }
  return total;
}

std::string Metrics::prometheus_text() const {
  std::lock_guard lock(_mu);
  // Group samples by metric name so HELP/TYPE appear once per family, as the format requires.
  std::map<std::string, std::vector<const Entry*>> families;
  for (const auto& e : _entries) families[e.name].push_back(&e);
  std::string out;
  for (const auto& [name, entries] : families) {
    const Entry& first = *entries.front();
    out += "# HELP " + name + " " + first.help + "\n";
    out += "# TYPE " + name + (first.is_counter ? " counter\n" : " gauge\n");
    for (const Entry* e : entries) {
      out += name;
      if (!e->labels.empty()) out += "{" + e->labels + "}";
      if (!e->is_counter && e->decimals > 0) {
        std::array<char, 32> text{};
        const double v = static_cast<double>(e->gauge.value()) / std::pow(10.0, e->decimals);
        std::snprintf(text.data(), text.size(), "%.*f", e->decimals, v);
        out += " " + std::string(text.data()) + "\n";
        continue;
      }
      out += " " + std::to_string(e->is_counter ? e->counter.value() : e->gauge.value()) + "\n";
    }
  }
  return out;
}

}  // namespace fleettwin::core
