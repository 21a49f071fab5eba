#include "core/siphash.h"

#include <gtest/gtest.h>

#include <string>

namespace iocwall {
namespace {

SipHash ReferenceKey() { return SipHash(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull); }

std::string Bytes(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>(i);
  return s;
}

// The example of the SipHash paper (appendix A): key 00..0f, message 00..0e.
TEST(SipHashTest, PaperVector) {
  SipHash h = ReferenceKey();
  h.AddBytes(Bytes(15));
  EXPECT_EQ(h.Finish(), 0xa129ca6149be45e5ull);
}

// The reference implementation's vectors.h, first entries (messages 00, 00 01, ...).
TEST(SipHashTest, ReferenceVectors) {
  SipHash empty = ReferenceKey();
  EXPECT_EQ(empty.Finish(), 0x726fdb47dd0e0e31ull);
  SipHash one = ReferenceKey();
  one.AddBytes(Bytes(1));
  EXPECT_EQ(one.Finish(), 0x74f839c593dc67fdull);
  SipHash eight = ReferenceKey();
  eight.AddBytes(Bytes(8));
  EXPECT_EQ(eight.Finish(), 0x93f5f5799a932462ull);
}

TEST(SipHashTest, WordsAreTheirLittleEndianBytes) {
  for (size_t pre : {0u, 3u, 8u}) {
    SipHash a = ReferenceKey(), b = ReferenceKey();
    a.AddBytes(Bytes(pre));
    b.AddBytes(Bytes(pre));
    a.AddWord(0x1716151413121110ull);
    b.AddBytes("\x10\x11\x12\x13\x14\x15\x16\x17");
    EXPECT_EQ(a.Finish(), b.Finish()) << pre;
  }
}

TEST(SipHashTest, KeyAndMessageBothMatter) {
  SipHash a = ReferenceKey(), b(1, 2), c = ReferenceKey();
  a.AddWord(1);
  b.AddWord(1);
  c.AddWord(2);
  EXPECT_NE(a.Finish(), b.Finish());
  EXPECT_NE(a.Finish(), c.Finish());
  // Finish does not consume: more may follow, and it changes the result.
  const uint64_t before = a.Finish();
  a.AddWord(0);
  EXPECT_NE(a.Finish(), before);
}

}  // namespace
}  // namespace iocwall
