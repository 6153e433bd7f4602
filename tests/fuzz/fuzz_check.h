#pragma once

// What every fuzz target shares: a check that reports and aborts (so libFuzzer keeps the input as a crash),
// whatever NDEBUG says.

#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond, what)                                             \
  do {                                                                     \
    if (!(cond)) ::fleettwin::fuzz::fail(__FILE__, __LINE__, #cond, what); \
  } while (0)

namespace fleettwin::fuzz {

[[noreturn]] inline void fail(const char* file, int line, const char* cond, std::string_view what) {
  std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %.*s\n", file, line, cond,
               static_cast<int>(what.size()), what.data());
  std::abort();
}

}  // namespace fleettwin::fuzz
