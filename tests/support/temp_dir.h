#pragma once

// A temporary directory for one test's files (stores, role logs, certificates). Header-only.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace fleettwin::testing {

/// A fresh directory under the system temp dir, `fleettwin-<name>-XXXXXX` (mkdtemp: two tests or two runs
/// never share one), removed with everything in it on destruction. When the running test has failed it is
/// kept and its path printed: the logs and stores in it are what explains the failure. Test thread only.
class TempDir {
 public:
  explicit TempDir(const std::string& name = "test") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / ("fleettwin-" + name + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    _path = pattern;
  }
  ~TempDir() {
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr, "test failed: its files are kept in %s\n", _path.c_str());
      return;
    }
    std::error_code ignored;  // a destructor must not throw; a leftover in /tmp is harmless
    std::filesystem::remove_all(_path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return _path; }
  /// `name` inside the directory, as a string for command lines and file APIs. Not created.
  std::string file(const std::string& name) const { return (_path / name).string(); }

 private:
  std::filesystem::path _path;
};

}  // namespace fleettwin::testing
