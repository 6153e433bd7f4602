// The registry's REST routing (src/registry/server.h handle_registry_request): every request a client sends,
// against a fresh in-memory store. The input is a sequence of requests, each a method byte, then a target and
// a body as length-prefixed strings (FuzzedDataProvider). No request may make the registry answer 5xx.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "registry/server.h"
#include "registry/store.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  registry::SchemaStore store;
  for (int i = 0; i < 16 && in.remaining_bytes() > 0; ++i) {
    static const char* const kMethods[] = {"GET", "POST", "PUT", "DELETE"};
    const char* method = kMethods[in.ConsumeIntegralInRange<int>(0, 3)];
    const std::string target = in.ConsumeRandomLengthString(256);
    const std::string body = in.ConsumeRandomLengthString(4096);
    const registry::RegistryResponse r = registry::handle_registry_request(store, method, target, body);
    FUZZ_CHECK(r.status >= 200 && r.status < 500,
               std::string(method) + " " + target + " -> " + std::to_string(r.status) + " " + r.body);
  }
  return 0;
}
