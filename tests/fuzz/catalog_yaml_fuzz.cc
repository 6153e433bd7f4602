// Signal catalogs (src/catalog/catalog.h parse_yaml): `--catalog FILE`, `fleettwin catalog check`. Anything
// that is not a valid catalog is a CatalogError; a valid one survives to_yaml and back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "catalog/catalog.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const catalog::Catalog c = catalog::parse_yaml(text, "fuzz.yaml");
    const std::string yaml = catalog::to_yaml(c);
    try {
      FUZZ_CHECK(catalog::parse_yaml(yaml, "to_yaml") == c, yaml);
    } catch (const catalog::CatalogError& e) {
      FUZZ_CHECK(false, yaml + ": " + e.what());
    }
  } catch (const catalog::CatalogError&) {
  }
  return 0;
}
