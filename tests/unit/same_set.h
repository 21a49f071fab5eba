// Whole-set equality for the unit tests: a set's ranges are not all of it, its parallel
// provenance and expiry vectors must match too (absent on both sides, or equal).
#pragma once

#include <gtest/gtest.h>

#include "core/interval_set.h"

namespace iocwall {

// Fatal within the helper only: wrap it in ASSERT_NO_FATAL_FAILURE to stop a loop on the first
// difference.
inline void CheckSameSet(const IntervalSet& got, const IntervalSet& want) {
  for (Family f : {Family::kV4, Family::kV6}) {
    SCOPED_TRACE(f == Family::kV4 ? "IPv4" : "IPv6");
    ASSERT_EQ(got.of(f).ranges, want.of(f).ranges);
    ASSERT_EQ(got.of(f).sources, want.of(f).sources);
    ASSERT_EQ(got.of(f).expires, want.of(f).expires);
  }
}

}  // namespace iocwall
