#!/usr/bin/env bash
# A packager's build: a plain Release configuration (no -Werror, no tests, so no
# GoogleTest), in a build folder of its own, must compile without a single compiler
# warning, and the .deb it makes must pass lintian with no error and no warning
# other than those deploy/debian/iocwall.lintian-overrides accepts, each with its
# reason. An override that no longer matches anything fails too (it would hide the
# next real finding under a stale excuse).
# usage: lintian.sh SOURCE_DIR BUILD_DIR [CXX]
#   BUILD_DIR is created or reused (ccache makes a rebuild cheap); CXX defaults to g++.
source "$(dirname "$0")/common.sh"
need cmake cpack lintian dpkg-deb
src=$1
build=$2
cxx=${3:-g++}
need "$cxx"

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$src")}

# Only what a packager passes: the build type (and BUILD_TESTING=OFF, which a machine
# without GoogleTest needs). IOCWALL_WERROR stays at its default, OFF.
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DCMAKE_CXX_COMPILER="$cxx" "${launcher[@]}" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "Release configure failed"; }
grep -q 'IOCWALL_WERROR:BOOL=OFF' "$build/CMakeCache.txt" || fail "-Werror is on by default"
grep -q 'GTest' "$build/CMakeCache.txt" && fail "BUILD_TESTING=OFF still looked for GoogleTest"
# Every object compiled, not only the ones ccache or make think stale: warnings are
# printed only when a file is compiled, and a cached object replays its warnings.
cmake --build "$build" --target clean >/dev/null
cmake --build "$build" -j"$(nproc)" >"$tmp/build.log" 2>&1 ||
  { tail -50 "$tmp/build.log"; fail "Release build failed"; }
if grep -E 'warning:' "$tmp/build.log"; then
  fail "the Release build with $cxx warns (above)"
fi
echo "Release build with $($cxx --version | head -1): no warning"
for b in iocwall iocwall-feedsim; do
  [[ -x $build/bin/$b ]] || fail "no $b in $build/bin"
done

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; fail "cpack -G DEB failed"; }
debs=("$tmp"/out/iocwall_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || fail "expected one .deb, got: ${debs[*]}"
deb=${debs[0]}

# Each override has a comment (its reason) right above it.
overrides=$src/deploy/debian/iocwall.lintian-overrides
awk '/^[^#[:space:]]/ && prev !~ /^#/ { print "no reason above: " $0; bad = 1 }
     { prev = $0 } END { exit bad }' "$overrides" || fail "an override lacks its reason"

# Errors and warnings fail, and so does an override that matched nothing
# (unused-override is an informational tag: shown with --display-level >=info).
run_lintian() {
  local rc=0
  lintian --fail-on error,warning --display-level '>=info' "$1" \
    >"$2" 2>&1 || rc=$?
  # lintian always reports something on this binary (info tags at least): an empty
  # report means it did not look.
  grep -qE '^[EWI]: iocwall' "$2" || { cat "$2"; fail "lintian produced no report"; }
  return $rc
}
rc=0
run_lintian "$deb" "$tmp/lintian.log" || rc=$?
cat "$tmp/lintian.log"
grep -E '^[EW]: ' "$tmp/lintian.log" && fail "lintian: errors or unexplained warnings (above)"
[[ $rc -eq 0 ]] || fail "lintian exited $rc"
grep -E 'unused-override|mismatched-override' "$tmp/lintian.log" &&
  fail "an override matches nothing: remove it"
echo "lintian: $(basename "$deb") has no error and no unexplained warning"

# Negative control: the same package without its copyright file must fail the check.
dpkg-deb -R "$deb" "$tmp/broken"
rm "$tmp/broken/usr/share/doc/iocwall/copyright"
dpkg-deb -b --root-owner-group "$tmp/broken" "$tmp/broken.deb" >/dev/null
run_lintian "$tmp/broken.deb" "$tmp/broken.log" &&
  fail "lintian passed a package without a copyright file"
grep -q '^E: iocwall: no-copyright-file' "$tmp/broken.log" ||
  { cat "$tmp/broken.log"; fail "the control did not fail for the expected reason"; }
echo "negative control: a package without copyright is refused (no-copyright-file)"
