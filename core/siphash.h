// SipHash-2-4 (Aumasson and Bernstein), streamed: a keyed 64-bit hash whose outputs an
// attacker who does not know the key cannot predict, so cannot collide on purpose. iocwall uses
// it to recognise an unchanged fetch (a feed's server is not trusted not to try). Pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace iocwall {

class SipHash {
 public:
  SipHash(uint64_t k0, uint64_t k1)
      : v0_(k0 ^ 0x736f6d6570736575ull),
        v1_(k1 ^ 0x646f72616e646f6dull),
        v2_(k0 ^ 0x6c7967656e657261ull),
        v3_(k1 ^ 0x7465646279746573ull) {}

  void AddBytes(std::string_view bytes) {
    for (unsigned char c : bytes) AddByte(c);
  }
  // The eight bytes of `w`, least significant first (the message is then the same whatever
  // the host's byte order).
  void AddWord(uint64_t w) {
    if (fill_ == 0) {
      Compress(w);
      length_ += 8;
      return;
    }
    for (int i = 0; i < 8; ++i) AddByte(static_cast<unsigned char>(w >> (8 * i)));
  }

  uint64_t Finish() const {
    SipHash h = *this;
    const uint64_t last = h.tail_ | (static_cast<uint64_t>(h.length_ + h.fill_) << 56);
    h.Compress(last);
    h.v2_ ^= 0xff;
    for (int i = 0; i < 4; ++i) h.Round();
    return h.v0_ ^ h.v1_ ^ h.v2_ ^ h.v3_;
  }

 private:
  static uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
  void Round() {
    v0_ += v1_;
    v1_ = Rotl(v1_, 13);
    v1_ ^= v0_;
    v0_ = Rotl(v0_, 32);
    v2_ += v3_;
    v3_ = Rotl(v3_, 16);
    v3_ ^= v2_;
    v0_ += v3_;
    v3_ = Rotl(v3_, 21);
    v3_ ^= v0_;
    v2_ += v1_;
    v1_ = Rotl(v1_, 17);
    v1_ ^= v2_;
    v2_ = Rotl(v2_, 32);
  }
  void Compress(uint64_t m) {
    v3_ ^= m;
    Round();
    Round();
    v0_ ^= m;
  }
  void AddByte(unsigned char c) {
    tail_ |= static_cast<uint64_t>(c) << (8 * fill_);
    if (++fill_ == 8) {
      Compress(tail_);
      length_ += 8;
      tail_ = 0;
      fill_ = 0;
    }
  }

  uint64_t v0_, v1_, v2_, v3_;
  uint64_t tail_ = 0;    // bytes not yet compressed, little-endian
  uint64_t length_ = 0;  // bytes compressed so far (only its low byte matters)
  unsigned fill_ = 0;    // bytes in tail_
};

}  // namespace iocwall
