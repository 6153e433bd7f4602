#include "stages/sites.h"

#include <algorithm>
#include <string_view>

#include "core/topics.h"

namespace fleettwin::stages {

namespace t = core::topics;

namespace {

constexpr const char* kFromSites[] = {t::kTelemetry, t::kScores, t::kAlerts, t::kCommandAcks};

bool from_sites(std::string_view topic) {
  return std::any_of(std::begin(kFromSites), std::end(kFromSites), [&](const char* s) { return topic == s; });
}

}  // namespace

std::vector<std::string> with_site_topics(const std::vector<std::string>& inputs) {
  std::vector<std::string> out = inputs;
  for (const auto& topic : inputs) {
    if (!from_sites(topic)) continue;
    std::string escaped;
    for (const char c : topic) {
      if (c == '.') escaped += '\\';
      escaped += c;
    }
    // librdkafka's regex has no {m,n}: the site name's length is checked where sites are named (--site).
    out.push_back("^[a-z0-9-]+\\." + escaped + "$");
  }
  return out;
}

void strip_site_topics(std::vector<log::Record>& batch) {
  for (auto& r : batch) {
    // The site is the topic's word, never a header a producer wrote (on any topic, central's own included).
    if (!r.headers.empty())
      std::erase_if(r.headers, [](const log::Header& h) { return h.key == t::kHeaderSite; });
    const auto dot = r.topic.find('.');
    if (dot == std::string::npos || dot == 0) continue;
    const std::string_view rest = std::string_view(r.topic).substr(dot + 1);
    if (!from_sites(rest) || r.topic.compare(0, dot, "fleet") == 0) continue;
    r.headers.push_back({t::kHeaderSite, r.topic.substr(0, dot)});
    r.topic = std::string(rest);
  }
}

}  // namespace fleettwin::stages
