// The YAML configuration file (src/config/config.h Config::load_yaml_text): `--config FILE`. Anything that is
// not a valid configuration is a ConfigError naming the file, never another exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  config::Config config;
  try {
    config.load_yaml_text(text, "fuzz.yaml");
  } catch (const config::ConfigError&) {
  }
  return 0;
}
