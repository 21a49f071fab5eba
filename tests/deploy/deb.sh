#!/usr/bin/env bash
# `cpack -G DEB` builds a package with the binary, both units, both man pages,
# the example configuration as a conffile and the 0700 state directory, whose
# Depends cover every shared library the binary needs. The package is then
# installed into a temporary root (dpkg --root, maintainer scripts included,
# dependencies checked against this machine's versions of them), its binary
# run, and removed then purged. This machine's own root is never touched.
# usage: deb.sh BUILD_DIR IOCWALL_BIN VERSION
source "$(dirname "$0")/common.sh"
need cpack dpkg dpkg-deb dpkg-query readelf
need_root "dpkg --root keeps file ownership"
build=$1
bin=$2
version=$3
src=$(cd "$(dirname "$0")/../.." && pwd)

dpkg-query -W iocwall >/dev/null 2>&1 && skip "iocwall is installed on this machine"

# Into this test's own directory: parallel tests never share a staging tree.
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; fail "cpack -G DEB failed"; }
debs=("$tmp"/out/iocwall_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || fail "expected one .deb, got: ${debs[*]}"
deb=${debs[0]}
echo "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# Contents, with the modes that matter.
dpkg-deb -c "$deb" | awk '{print $1, $6}' >"$tmp/contents"
want() { grep -qxF -- "$1" "$tmp/contents" || { cat "$tmp/contents"; fail "package lacks: $1"; }; }
want '-rwxr-xr-x ./usr/sbin/iocwall'
want '-rw-r--r-- ./usr/lib/systemd/system/iocwall.service'
want '-rw-r--r-- ./usr/lib/systemd/system/iocwall-restore.service'
want '-rw-r--r-- ./usr/share/man/man8/iocwall.8.gz'
want '-rw-r--r-- ./usr/share/man/man5/iocwall.conf.5.gz'
want '-rw-r--r-- ./etc/iocwall/iocwall.conf'
want '-rw-r--r-- ./usr/share/doc/iocwall/examples/iocwall.conf.example'
want 'drwx------ ./var/lib/iocwall/'
want '-rw-r--r-- ./usr/share/doc/iocwall/copyright'
want '-rw-r--r-- ./usr/share/doc/iocwall/changelog.gz'
want '-rw-r--r-- ./usr/share/lintian/overrides/iocwall'
[[ $(dpkg-deb -f "$deb" Version) == "$version" ]] || fail "version is not $version"
[[ $(dpkg-deb -f "$deb" Package) == iocwall ]] || fail "package name is not iocwall"

dpkg-deb -e "$deb" "$tmp/control"
[[ $(cat "$tmp/control/conffiles") == /etc/iocwall/iocwall.conf ]] ||
  fail "conffiles: $(cat "$tmp/control/conffiles")"

# Depends: the package of every NEEDED library of the packaged binary, at a version
# this machine satisfies.
dpkg-deb -x "$deb" "$tmp/extract"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
dep_names=" $(sed 's/([^)]*)//g; s/[,|]/ /g' <<<"$depends" | tr -s ' ') "
for lib in $(readelf -d "$tmp/extract/usr/sbin/iocwall" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
  [[ $lib == ld-linux* ]] && continue
  # Read every line (no early exit): with pipefail, a closed pipe would fail the test.
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !p { p = $NF } END { print p }')
  [[ -n $path ]] || fail "cannot locate $lib"
  owner=$( (dpkg-query -S "$path" 2>/dev/null || dpkg-query -S "$(readlink -f "$path")") |
    awk -F: 'NR == 1 { print $1 }')
  [[ -n $owner ]] || fail "no package owns $path"
  [[ $dep_names == *" $owner "* ]] || fail "$lib comes from $owner, not in Depends"
done
# The packaged units are the checked-in ones (the package's prefix is /usr).
for unit in iocwall.service iocwall-restore.service; do
  cmp -s "$tmp/extract/usr/lib/systemd/system/$unit" "$src/deploy/systemd/$unit" ||
    fail "packaged $unit differs from deploy/systemd/$unit"
done

# A temporary root whose dpkg database holds this machine's records of the packages
# named in Depends, so dpkg checks the dependencies for real (no --force-depends).
root=$tmp/root
db=$root/var/lib/dpkg
mkdir -p "$db/info" "$db/updates" "$db/triggers"
: >"$db/available"
: >"$db/status"
for dep in $dep_names; do
  dpkg-query -s "$dep" >>"$db/status" 2>/dev/null || fail "Depends names $dep, not installed here"
  echo >>"$db/status"
  : >"$db/info/$dep.list"
done
dpkgr() {
  # --force-script-chrootless: the maintainer scripts run here with DPKG_ROOT set (the
  # root has no shell); they must only touch paths under it.
  dpkg --root="$root" --force-script-chrootless --log=/dev/null "$@"
}
dpkgr -i "$deb" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "dpkg -i failed"; }
dpkg-query --admindir="$db" -W -f='${Status}\n' iocwall | grep -qx 'install ok installed' ||
  fail "not installed in the temporary root"
[[ $(stat -c %a "$root/var/lib/iocwall") == 700 ]] || fail "state directory not 0700"
out=$("$root/usr/sbin/iocwall" --version) || fail "the installed binary does not run"
[[ $out == "iocwall $version" ]] || fail "--version says '$out'"
echo "installed into $root: $out"
# The conffile as shipped names no source yet: refused, saying what to add.
out=$("$root/usr/sbin/iocwall" -c "$root/etc/iocwall/iocwall.conf" --check-config 2>&1) &&
  fail "the shipped configuration was accepted without a source"
grep -q 'nothing to enforce' <<<"$out" || fail "unexpected refusal: $out"

# Remove: the program goes, the conffile and the key stay; purge: the conffile, the
# key the admin put beside it and the state go.
printf 'k\n' >"$root/etc/iocwall/api_key"
echo "edited by the operator" >>"$root/etc/iocwall/iocwall.conf"
dpkgr -r iocwall >"$tmp/remove.log" 2>&1 || { cat "$tmp/remove.log"; fail "dpkg -r failed"; }
[[ ! -e $root/usr/sbin/iocwall && ! -e $root/usr/lib/systemd/system/iocwall.service ]] ||
  fail "files left after remove"
grep -q 'edited by the operator' "$root/etc/iocwall/iocwall.conf" || fail "remove dropped the conffile"
[[ -e $root/etc/iocwall/api_key ]] || fail "remove dropped the API key (purge's job)"
mkdir -p "$root/var/lib/iocwall/sources"
echo 192.0.2.1 >"$root/var/lib/iocwall/sources/test.list"
dpkgr -P iocwall >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "dpkg -P failed"; }
[[ ! -e $root/etc/iocwall/iocwall.conf ]] || fail "purge left the conffile"
[[ ! -e $root/etc/iocwall ]] || fail "purge left /etc/iocwall: $(ls -A "$root/etc/iocwall")"
[[ ! -e $root/var/lib/iocwall ]] || fail "purge left the state directory"
! dpkg-query -W iocwall >/dev/null 2>&1 || fail "iocwall got installed on this machine"
echo "removed and purged: ok"
