#include "agent/guards.h"

#include "core/text.h"

namespace iocwall {

GuardVerdict CheckGuards(const GuardInput& in) {
  GuardVerdict v;
  auto refuse = [&](std::string why) {
    v.ok = false;
    v.reasons.push_back(std::move(why));
  };
  for (const auto& s : in.sources) {
    // An empty answer from a source that had entries is far more often an outage upstream
    // (an emptied collection, an expired key answered with an empty page) than a real clean-up.
    if (s.entries == 0 && s.previous_entries > 0) {
      refuse(s.name + " returned no entries (it had " + std::to_string(s.previous_entries) +
             "); use --force once if the collection really is empty");
      continue;
    }
    // Per source as well as in total: a collection that collapses must not pass because
    // another, larger one keeps the total steady. Small sources churn by a few entries; a
    // loss under min_source_loss entries is never a collapse.
    if (s.entries < s.previous_entries) {
      uint64_t lost = s.previous_entries - s.entries;
      if (lost >= in.min_source_loss &&
          lost * 100 > uint64_t{in.max_shrink_percent} * s.previous_entries) {
        refuse(s.name + " would shrink from " + std::to_string(s.previous_entries) + " to " +
               Count(s.entries, "entry", "entries") + " (" +
               std::to_string(lost * 100 / s.previous_entries) + "%), over [sync] " +
               "max_shrink_percent = " + std::to_string(in.max_shrink_percent) +
               "; use --force once to accept it");
      }
    }
  }
  if (in.new_elements > in.max_entries) {
    refuse("the result has " + Count(in.new_elements, "element", "elements") +
           ", over [sync] max_entries = " + std::to_string(in.max_entries));
  }
  if (in.have_previous && in.previous_elements > 0 && in.new_elements < in.previous_elements) {
    // Integer arithmetic: no rounding lets a 50.4% shrink pass a 50% limit.
    uint64_t lost = in.previous_elements - in.new_elements;
    if (lost * 100 > uint64_t{in.max_shrink_percent} * in.previous_elements) {
      refuse("the enforced set would shrink from " + std::to_string(in.previous_elements) + " to " +
             Count(in.new_elements, "element", "elements") + " (" +
             std::to_string(lost * 100 / in.previous_elements) + "%), over [sync] " +
             "max_shrink_percent = " + std::to_string(in.max_shrink_percent) +
             "; use --force once to accept it");
    }
  }
  return v;
}

}  // namespace iocwall
