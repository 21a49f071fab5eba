// Golden text: a test's output compared with tests/netlink/golden/<name>. Run a test with
// IOCWALL_UPDATE_GOLDEN=1 to write the files after a deliberate change, then review the diff.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace iocwall::golden {

inline void ExpectGolden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(IOCWALL_GOLDEN_DIR) + "/" + name;
  if (const char* u = std::getenv("IOCWALL_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(path) << actual;
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path << " is missing: run with IOCWALL_UPDATE_GOLDEN=1";
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(want.str(), actual) << "differs from " << path;
}

}  // namespace iocwall::golden
