// Hold: which ranges must stay matched by a second, untouched set while a transaction commits.
//
// On Linux 6.1 (Debian 12) an interval set's lookup on the packet path can settle on an element
// that the running transaction added and that is not active yet, and then report no match
// although an old, still active element covers the address (fixed upstream in 2025 by
// "netfilter: nft_set_rbtree: continue traversal if element is inactive"; not in Debian's 6.1).
// The lookup takes the nearest key at or below the address; so the addresses at risk are those
// whose nearest key is new: addresses inside a range the transaction adds. Those that the old
// set already covers (a reshape, a timeout refresh done as delete + add) are blocked before and
// after the commit and must not pass during it. Addresses outside every added range keep their
// old nearest key, and addresses in an added range that were not blocked before are not
// blocked yet: neither needs holding.
#pragma once

#include <span>
#include <vector>

#include "core/interval_set.h"

namespace iocwall {

// The addresses of `add` that `current` covers, as sorted ranges with adjacent ones merged.
// `current` may be unsorted (a kernel dump); `add` is sorted. Both are free of overlaps.
std::vector<Range> StillCoveredByAdds(std::span<const Range> current, std::span<const Range> add);

}  // namespace iocwall
