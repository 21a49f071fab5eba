// Counts in operator messages: "1 line", never "1 lines".
#include "core/text.h"

#include <gtest/gtest.h>

namespace iocwall {
namespace {

TEST(TextCount, OneIsSingularEverythingElsePlural) {
  EXPECT_EQ(Count(1, "line", "lines"), "1 line");
  EXPECT_EQ(Count(0, "line", "lines"), "0 lines");
  EXPECT_EQ(Count(2, "entry", "entries"), "2 entries");
  EXPECT_EQ(Count(1, "entry", "entries"), "1 entry");
  EXPECT_EQ(Count(18446744073709551615u, "byte", "bytes"), "18446744073709551615 bytes");
}

}  // namespace
}  // namespace iocwall
