// The model artifact's header (src/ml/model.h read_artifact_header): frame and metadata of every record of
// fleet.models and of `--model FILE`, read before the module is handed to libtorch.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "fuzz_check.h"
#include "ml/model.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const ml::ArtifactHeader header = ml::read_artifact_header(bytes);
    FUZZ_CHECK(header.module.data() >= bytes.data() && header.module.end() == bytes.end(), "module view");
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
