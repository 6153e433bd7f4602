#include "core/metrics.h"

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

int64_t Metrics::value(const std::string& name_with_labels) const {
  std::lock_guard lock(_mu);
  for (const auto& e : _entries) {
    std::string full = e.labels.empty() ? e.name : e.name + "{" + e.labels + "}";
    if (full == name_with_labels) return e.is_counter ? e.counter.value() : e.gauge.value();
  }
  return 0;
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
      out += " " + std::to_string(e->is_counter ? e->counter.value() : e->gauge.value()) + "\n";
    }
  }
  return out;
}

}  // namespace fleettwin::core
