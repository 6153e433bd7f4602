#include "api/settings.h"

#include <simdjson.h>

#include <map>
#include <set>

#include "codec/json.h"

namespace fleettwin::api {

std::vector<core::Command> commands_for_settings(const core::Twin& twin, std::string_view body,
                                                 int64_t now_ms, uint64_t sequence) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size()).get(doc) || !doc.is_object())
    throw ApiError(400, "body: expected a JSON object of settings, e.g. {\"speed_limit_kmh\": 90}");
  std::vector<core::Command> out;
  std::set<std::string_view> seen;
  for (auto [key, value] : doc.get_object()) {
    // One command per setting: a body repeating a key (1 MB of "service": true made 70,000 commands) is
    // refused, so a request asks for at most as many commands as there are settings.
    if (!seen.insert(key).second) throw ApiError(400, "setting '" + std::string(key) + "' given twice");
    // The setting <-> command table lives in codec (command_for_setting / command_settings), shared with the
    // twin stage and the simulated cars, so all three agree on names, ranges and value texts.
    core::Command c;
    std::string error;
    if (!codec::command_for_setting(key, simdjson::minify(value), c, &error)) throw ApiError(400, error);
    std::map<std::string, std::string> settings;
    codec::command_settings(c, settings, nullptr);
    const auto it = twin.desired.find(std::string(key));
    if (it != twin.desired.end() && it->second == settings.begin()->second && key != "service") continue;
    c.car = twin.id;
    c.id =
        twin.id + ":" + c.name + ":" + std::to_string(now_ms) + ":" + std::to_string(sequence + out.size());
    c.created = now_ms;
    c.expires = now_ms + core::kDefaultCommandTtlMs;  // every command expires (core/alert.h)
    c.status = "pending";
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace fleettwin::api
