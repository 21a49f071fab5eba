#!/usr/bin/env bash
# The kernel matrix: runs iocwall's kernel tests (and optionally e2e tests) on Debian 12's own
# kernel (linux-image-amd64, 6.1) booted under QEMU (TCG), as ../shared/docs/kernel-6.1.md
# describes. The kernel package is downloaded with `apt-get download` into a cache folder and
# unpacked there; it is never installed on the host.
#
#   tests/kernel61/run.sh BIN_DIR CACHE_DIR [--e2e "test_enforce.py test_modes.py ..."]
#
# The guest's root is the host's / (read-only over 9p, from a non-recursive read-only bind
# mount) under an overlay with a tmpfs upper layer, so the guest runs the host's binaries and
# tools. Results come back over a second, writable 9p share. Exit 0 only if every test ran and
# passed; 77 (skipped) when not root. Bounded: IOCWALL_KERNEL61_TIMEOUT seconds for the guest
# (default 1200). IOCWALL_KERNEL61_GTEST_FILTER replaces the gtest filter;
# IOCWALL_TEST_SKIP_HOLD_BRIDGE=1 is passed on to the tests (the leak measurement without the
# hold bridge, RELIABILITY.md).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 BIN_DIR CACHE_DIR [--e2e 'script.py ...']" >&2
  exit 2
fi
bin_dir=$(realpath "$1")
cache=$2
e2e=""
if [[ ${3:-} == --e2e ]]; then e2e=${4:-}; fi
src_dir=$(realpath "$(dirname "$0")/../..")
budget=${IOCWALL_KERNEL61_TIMEOUT:-1200}
gtest_filter=${IOCWALL_KERNEL61_GTEST_FILTER:-*}

if [[ $(id -u) -ne 0 ]]; then
  echo "kernel61: skipped (needs root: bind mounts and network namespaces in the guest)"
  exit 77
fi
for tool in qemu-system-x86_64 busybox depmod modprobe cpio dpkg-deb apt-get; do
  if ! command -v "$tool" >/dev/null; then
    echo "kernel61: FAIL: $tool is missing (bash scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
done
busybox_bin=$(command -v busybox)
if ! file -L "$busybox_bin" | grep -q 'statically linked'; then
  echo "kernel61: FAIL: $busybox_bin is not static (install busybox-static)" >&2
  exit 1
fi
for t in nft_backend_test packet_test timeout_test; do
  if [[ ! -x $bin_dir/$t ]]; then
    echo "kernel61: FAIL: $bin_dir/$t is missing (build first)" >&2
    exit 1
  fi
done

# Re-run inside a private mount namespace: whatever happens to this script (even SIGKILL),
# its mounts disappear with the namespace. The trap below is the orderly path.
if [[ -z ${IOCWALL_KERNEL61_IN_NS:-} ]]; then
  IOCWALL_KERNEL61_IN_NS=1 exec unshare --mount --propagation private -- "$0" "$@"
fi

# --- The kernel: Debian 12's current linux-image-amd64, cached --------------------------------
mkdir -p "$cache"
cache=$(realpath "$cache")
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
  awk '/Depends: linux-image-[0-9]/ {print $2; exit}' || true)
if [[ -z $pkg ]]; then
  # No package lists (offline machine): use what the cache holds.
  pkg=$(cd "$cache" && ls -d linux-image-*-amd64_*.deb 2>/dev/null | sed 's/_.*//' | tail -1)
fi
if [[ -z $pkg ]]; then
  echo "kernel61: FAIL: cannot find linux-image-amd64's kernel (apt-get update?)" >&2
  exit 1
fi
kver=${pkg#linux-image-}
deb=$(cd "$cache" && ls "${pkg}"_*.deb 2>/dev/null | tail -1 || true)
if [[ -z $deb ]]; then
  echo "kernel61: downloading $pkg (apt-get download; not installed on the host)"
  (cd "$cache" && apt-get download "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed')
  deb=$(cd "$cache" && ls "${pkg}"_*.deb | tail -1)
fi
kroot=$cache/root-$kver
# Debian's point releases move linux-image-amd64 to a new ABI: drop older cached kernels.
find "$cache" -maxdepth 1 \( \( -name 'root-*' ! -name "root-$kver" \) -o \
  \( -name 'linux-image-*.deb' ! -name "${pkg}_*" \) \) -exec rm -rf {} +
if [[ ! -f $kroot/.ready ]]; then
  rm -rf "$kroot"
  dpkg-deb -x "$cache/$deb" "$kroot"
  depmod -b "$kroot" "$kver"
  touch "$kroot/.ready"
fi
kpkgver=$(dpkg-deb -f "$cache/$deb" Version)
echo "kernel61: testing on $pkg $kpkgver (Debian 12's linux-image-amd64), under QEMU TCG"

# --- Scratch: the initramfs, the guest script, the results share, the root bind mount ---------
scratch=$(mktemp -d /tmp/iocwall-kernel61.XXXXXX)
rootmnt=$scratch/hostroot
out=$scratch/out
mkdir -p "$rootmnt" "$out" "$scratch/initramfs"
cleanup() {
  if mountpoint -q "$rootmnt"; then umount "$rootmnt" || umount -l "$rootmnt"; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Exporting / itself would drag the host's /proc, /sys and /dev along: a non-recursive,
# read-only bind shows only the root filesystem.
mount --bind / "$rootmnt"
mount -o remount,bind,ro "$rootmnt"

ir=$scratch/initramfs
mkdir -p "$ir/bin" "$ir/modules" "$ir/proc" "$ir/sys" "$ir/dev" "$ir/lower" "$ir/rw" \
  "$ir/newroot"
cp "$busybox_bin" "$ir/bin/busybox"
# The modules to mount the root, in dependency order, each once.
modprobe -d "$kroot" -S "$kver" -a --show-depends virtio_pci 9pnet_virtio 9p overlay |
  awk '$1 == "insmod" && !seen[$2]++ {print $2}' >"$scratch/modules"
: >"$ir/modules.list"
while read -r ko; do
  cp "$ko" "$ir/modules/"
  basename "$ko" >>"$ir/modules.list"
done <"$scratch/modules"

cat >"$ir/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "kernel61-init: $*"; sleep 1; reboot -f; }
for m in $(cat /modules.list); do insmod "/modules/$m" || fail "insmod $m"; done
for arg in $(cat /proc/cmdline); do
  case $arg in
    iocwall.script=*) script=${arg#iocwall.script=} ;;
    iocwall.moddir=*) moddir=${arg#iocwall.moddir=} ;;
    iocwall.kver=*) kver=${arg#iocwall.kver=} ;;
  esac
done
mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose hostroot /lower ||
  fail "mounting the host's root"
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
  fail "mounting the overlay"
# nf_tables and friends autoload (modprobe) from the guest kernel's own modules.
mkdir -p "/newroot/usr/lib/modules/$kver"
mount --bind "/lower$moddir" "/newroot/usr/lib/modules/$kver" || fail "binding the modules"
mkdir -p /newroot/mnt/kernel61-out
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none results /newroot/mnt/kernel61-out ||
  fail "mounting the results share"
umount /proc /sys /dev
exec switch_root /newroot /bin/bash "$script"
EOF
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1 >"$scratch/initramfs.gz")

# --- The guest's script: runs as PID 1 after switch_root ------------------------------------
cat >"$scratch/guest.sh" <<EOF
#!/bin/bash
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# The tree under test may live under /tmp or /run (CI clones anywhere): keep it reachable
# before those get fresh tmpfs mounts.
mkdir -p /mnt/kernel61-src /mnt/kernel61-bin
mount --bind $(printf %q "$src_dir") /mnt/kernel61-src
mount --bind $(printf %q "$bin_dir") /mnt/kernel61-bin
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
ip link set lo up
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
out=/mnt/kernel61-out
$( [[ -n ${IOCWALL_TEST_SKIP_HOLD_BRIDGE:-} ]] && echo "export IOCWALL_TEST_SKIP_HOLD_BRIDGE=1" )
uname -r >\$out/kernel
echo "kernel61-guest: running on \$(uname -r)"
cd /mnt/kernel61-bin
for t in nft_backend_test packet_test timeout_test; do
  echo "kernel61-guest: == \$t"
  start=\$(date +%s)
  timeout -k 5 900 ./\$t --gtest_filter=$(printf %q "$gtest_filter") 2>&1 | tee \$out/\$t.log
  echo "\${PIPESTATUS[0]}" >\$out/\$t.rc
  echo "\$t \$((\$(date +%s) - start)) s" >>\$out/times
done
for s in $e2e; do
  echo "kernel61-guest: == e2e \$s"
  start=\$(date +%s)
  IOCWALL_BIN_DIR=/mnt/kernel61-bin PYTHONDONTWRITEBYTECODE=1 \\
    timeout -k 5 900 python3 /mnt/kernel61-src/tests/e2e/\$s 2>&1 | tee \$out/e2e_\$s.log
  echo "\${PIPESTATUS[0]}" >\$out/e2e_\$s.rc
  echo "e2e_\$s \$((\$(date +%s) - start)) s" >>\$out/times
done
echo done >\$out/finished
sync
reboot -f
EOF
chmod +x "$scratch/guest.sh"

# --- Boot ------------------------------------------------------------------------------------
echo "kernel61: booting (guest budget ${budget} s)"
start=$(date +%s)
set +e
timeout -k 10 "$budget" qemu-system-x86_64 \
  -accel tcg -cpu max -smp 2 -m 3072 -nic none -nographic -no-reboot -serial mon:stdio \
  -kernel "$kroot/boot/vmlinuz-$kver" -initrd "$scratch/initramfs.gz" \
  -append "console=ttyS0 panic=-1 quiet iocwall.script=$scratch/guest.sh iocwall.moddir=$kroot/lib/modules/$kver iocwall.kver=$kver" \
  -fsdev "local,id=hostroot,path=$rootmnt,security_model=passthrough,readonly=on" \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -fsdev "local,id=results,path=$out,security_model=passthrough" \
  -device virtio-9p-pci,fsdev=results,mount_tag=results </dev/null
qemu_rc=$?
set -e
echo "kernel61: guest ran $(($(date +%s) - start)) s (qemu exit $qemu_rc)"

# --- Verdict ---------------------------------------------------------------------------------
fail=0
if [[ $qemu_rc -eq 124 || $qemu_rc -eq 137 ]]; then
  echo "kernel61: FAIL: the guest did not finish within ${budget} s" >&2
  fail=1
fi
if [[ ! -f $out/finished ]]; then
  echo "kernel61: FAIL: the guest's script did not finish" >&2
  fail=1
fi
guest_kernel=$(cat "$out/kernel" 2>/dev/null || echo "?")
if [[ $guest_kernel != "$kver" ]]; then
  echo "kernel61: FAIL: the guest ran kernel '$guest_kernel', not $kver" >&2
  fail=1
fi
for t in nft_backend_test packet_test timeout_test; do
  rc=$(cat "$out/$t.rc" 2>/dev/null || echo missing)
  if [[ $rc != 0 ]]; then
    echo "kernel61: FAIL: $t on $kver: exit $rc" >&2
    fail=1
  elif ! grep -q '\[  PASSED  \]' "$out/$t.log"; then
    echo "kernel61: FAIL: $t on $kver: no gtest PASSED line" >&2
    fail=1
  fi
done
for s in $e2e; do
  rc=$(cat "$out/e2e_$s.rc" 2>/dev/null || echo missing)
  if [[ $rc != 0 ]]; then
    echo "kernel61: FAIL: e2e $s on $kver: exit $rc" >&2
    fail=1
  fi
done
[[ -f $out/times ]] && sed 's/^/kernel61: time: /' "$out/times"
if [[ $fail -ne 0 ]]; then
  echo "kernel61: FAILED on $pkg $kpkgver" >&2
  exit 1
fi
echo "kernel61: OK: every test passed on $pkg $kpkgver ($kver) (filter: $gtest_filter)"
