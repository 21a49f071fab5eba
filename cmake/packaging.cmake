# Install rules and the Debian package (`cpack -G DEB` in the build folder).
# Included at the end of the top CMakeLists, once every target exists.
#
# Layout (the package uses the prefix /usr):
#   <prefix>/sbin/iocwall                          the agent
#   <prefix>/lib/systemd/system/iocwall{,-restore}.service
#   <prefix>/share/man/man8/iocwall.8.gz, man5/iocwall.conf.5.gz
#   <prefix>/share/doc/iocwall/examples/iocwall.conf.example
#   /etc/iocwall/iocwall.conf                      the example, a conffile
#   /var/lib/iocwall/                              the state directory, 0700
# /etc and /var are the agent's compiled-in defaults. As GNUInstallDirs does,
# they are used only with the prefix /usr; `cmake --install --prefix /opt/x`
# writes /opt/x/etc and /opt/x/var instead, never outside its prefix (then
# point the agent at its file with -c).
include(GNUInstallDirs)

set(_iocwall_deploy ${PROJECT_SOURCE_DIR}/deploy)
set(_iocwall_gen ${CMAKE_BINARY_DIR}/packaging)

if(TARGET iocwall)
  install(TARGETS iocwall RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
else()
  message(WARNING "packaging: no target 'iocwall' yet; the package will lack the binary")
endif()

# The checked-in units name /usr/sbin/iocwall. They are rewritten at install
# time, when the prefix is known (cpack installs with /usr, `cmake --install`
# with whatever --prefix says), to name the binary actually installed.
foreach(unit iocwall.service iocwall-restore.service)
  set(_unit_src ${_iocwall_deploy}/systemd/${unit})
  set(_unit_out ${_iocwall_gen}/installed/${unit})
  set(_sbin ${CMAKE_INSTALL_SBINDIR})
  string(CONFIGURE [=[
    file(READ "@_unit_src@" _iocwall_unit)
    string(REPLACE "/usr/sbin/iocwall" "${CMAKE_INSTALL_PREFIX}/@_sbin@/iocwall"
           _iocwall_unit "${_iocwall_unit}")
    file(WRITE "@_unit_out@" "${_iocwall_unit}")
    file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
         FILES "@_unit_out@")
  ]=] _code @ONLY)
  install(CODE "${_code}")
endforeach()

# Debian ships man pages gzipped (-n: no name or time stamp, reproducible).
find_program(IOCWALL_GZIP gzip REQUIRED)
set(_iocwall_man_gz)
foreach(page iocwall.8 iocwall.conf.5)
  string(REGEX MATCH "[0-9]$" _section ${page})
  add_custom_command(
    OUTPUT ${_iocwall_gen}/${page}.gz
    COMMAND ${IOCWALL_GZIP} -9n -c ${PROJECT_SOURCE_DIR}/man/${page} > ${_iocwall_gen}/${page}.gz
    DEPENDS ${PROJECT_SOURCE_DIR}/man/${page}
    COMMENT "Compressing man page ${page}"
    VERBATIM)
  list(APPEND _iocwall_man_gz ${_iocwall_gen}/${page}.gz)
  install(FILES ${_iocwall_gen}/${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_section})
endforeach()
add_custom_target(iocwall_man ALL DEPENDS ${_iocwall_man_gz})

install(FILES ${_iocwall_deploy}/iocwall.conf.example DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# Who answers for the package. The default is a placeholder on a reserved domain
# (RFC 2606): the project has no public address yet, and a distributor sets their own
# (-DIOCWALL_MAINTAINER="Name <address>"); lintian refuses localhost, not this.
set(IOCWALL_MAINTAINER "iocwall maintainers <iocwall@example.org>"
    CACHE STRING "Maintainer field of the Debian package, and its changelog's signer")
# Debian's copyright file and changelog (a native package: changelog.gz), whose
# version must be the project's.
file(STRINGS ${_iocwall_deploy}/debian/changelog.in _iocwall_changelog_head LIMIT_COUNT 1)
if(NOT _iocwall_changelog_head MATCHES "^iocwall \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "deploy/debian/changelog.in starts with '${_iocwall_changelog_head}': "
                      "add an entry for ${PROJECT_VERSION}")
endif()
configure_file(${_iocwall_deploy}/debian/copyright.in ${_iocwall_gen}/copyright @ONLY)
configure_file(${_iocwall_deploy}/debian/changelog.in ${_iocwall_gen}/changelog @ONLY)
add_custom_command(
  OUTPUT ${_iocwall_gen}/changelog.gz
  COMMAND ${IOCWALL_GZIP} -9n -c ${_iocwall_gen}/changelog > ${_iocwall_gen}/changelog.gz
  DEPENDS ${_iocwall_gen}/changelog
  COMMENT "Compressing the Debian changelog"
  VERBATIM)
add_custom_target(iocwall_changelog ALL DEPENDS ${_iocwall_gen}/changelog.gz)
install(FILES ${_iocwall_gen}/copyright ${_iocwall_gen}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${_iocwall_deploy}/debian/iocwall.lintian-overrides
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides RENAME iocwall)
set(_example ${_iocwall_deploy}/iocwall.conf.example)
set(_example_out ${_iocwall_gen}/installed/iocwall.conf)
string(CONFIGURE [=[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(_iocwall_etc /etc)
    set(_iocwall_var /var)
  else()
    set(_iocwall_etc "${CMAKE_INSTALL_PREFIX}/etc")
    set(_iocwall_var "${CMAKE_INSTALL_PREFIX}/var")
  endif()
  # Never overwrite an operator's configuration on a re-install from source.
  if(EXISTS "$ENV{DESTDIR}${_iocwall_etc}/iocwall/iocwall.conf")
    message(STATUS "Keeping: $ENV{DESTDIR}${_iocwall_etc}/iocwall/iocwall.conf")
  else()
    configure_file("@_example@" "@_example_out@" COPYONLY)
    file(INSTALL DESTINATION "${_iocwall_etc}/iocwall" TYPE FILE FILES "@_example_out@")
  endif()
  message(STATUS "Installing: $ENV{DESTDIR}${_iocwall_var}/lib/iocwall (0700)")
  file(MAKE_DIRECTORY "$ENV{DESTDIR}${_iocwall_var}/lib/iocwall")
  file(CHMOD "$ENV{DESTDIR}${_iocwall_var}/lib/iocwall" PERMISSIONS OWNER_READ OWNER_WRITE
       OWNER_EXECUTE)
]=] _code @ONLY)
install(CODE "${_code}")

# The package.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME iocwall)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${IOCWALL_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "IOC blocklists from Sekoia.io enforced in nftables sets")
# Lines under 80 columns (Debian policy 3.4.1; lintian checks it).
set(CPACK_PACKAGE_DESCRIPTION
    "iocwall pulls IP blocklists from Sekoia.io IOC collections and local files,\n\
merges them, carves out an allowlist and the host's own addresses, and keeps\n\
the result enforced in nftables interval sets, applying each update as one\n\
atomic netlink transaction. The last good list survives feed outages and\n\
reboots (an early-boot unit restores it before the network). Ships hardened\n\
systemd units and man pages.")
# The package installs under /usr whatever CMAKE_INSTALL_PREFIX says; DESTDIR
# staging keeps the absolute /etc and /var paths inside the package.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Debug information stays in the build tree; the package gets a stripped binary.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: from the binary's libraries (dpkg-shlibdeps), never a hand-kept list.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Not a library dependency, so shlibdeps cannot see it: the API is reached over
# HTTPS and libcurl verifies it against the system's CA bundle.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nftables")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Maintainer scripts and the conffile list, generated so they follow the paths.
set(_iocwall_conf /etc/iocwall/iocwall.conf)
set(_iocwall_state /var/lib/iocwall)
set(_iocwall_etcdir /etc/iocwall)
file(CONFIGURE OUTPUT ${_iocwall_gen}/conffiles CONTENT "${_iocwall_conf}\n")
# The maintainer scripts follow what dh_installsystemd generates (bookworm): units
# are enabled and disabled through deb-systemd-helper, which records the state so that
# an admin's choice survives upgrades and purge removes what it made, and started or
# stopped through deb-systemd-invoke, which honours policy-rc.d. Unlike the debhelper
# default, a first install enables and starts nothing: there is no collection id and
# no API key yet (the README's step "systemctl enable --now" comes after them).
# $DPKG_ROOT is set when dpkg installs into another root (dpkg --root with
# --force-script-chrootless): deb-systemd-helper then works inside that root, and the
# host's running systemd is none of our business.
set(_iocwall_units "iocwall.service iocwall-restore.service")
file(CONFIGURE OUTPUT ${_iocwall_gen}/postinst CONTENT [=[#!/bin/sh
set -e
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] ||
   [ "$1" = abort-remove ]; then
  chmod 0700 "${DPKG_ROOT:-}@_iocwall_state@"
  for unit in @_iocwall_units@; do
    # Only removes a mask that deb-systemd-helper itself set on removal.
    deb-systemd-helper unmask "$unit" >/dev/null || true
    # On an upgrade, a unit the admin had enabled gets any new symlinks.
    if deb-systemd-helper --quiet was-enabled "$unit" &&
       deb-systemd-helper debian-installed "$unit"; then
      deb-systemd-helper enable "$unit" >/dev/null || true
    else
      deb-systemd-helper update-state "$unit" >/dev/null || true
    fi
  done
  if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    # An upgrade restarts a running daemon on the new binary; a stopped one stays so.
    if [ -n "$2" ]; then
      deb-systemd-invoke try-restart iocwall.service >/dev/null || true
    fi
  fi
fi
exit 0
]=] @ONLY)
file(CONFIGURE OUTPUT ${_iocwall_gen}/prerm CONTENT [=[#!/bin/sh
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  deb-systemd-invoke stop iocwall.service >/dev/null || true
  # The table stays: stopping never opens the gateway. Say how to drop it.
  echo "iocwall: table inet iocwall stays enforced until reboot;" \
       "'nft delete table inet iocwall' removes it now." >&2
fi
exit 0
]=] @ONLY)
# Purge removes what an admin expects gone with the package: the conffile (dpkg), the
# API key the admin put beside it (/etc/iocwall/api_key is the package's documented
# path, and a leftover credential is a leak), the state (the last good list, cursors),
# /run/iocwall and deb-systemd-helper's records; /etc/iocwall goes if nothing else is
# left in it.
file(CONFIGURE OUTPUT ${_iocwall_gen}/postrm CONTENT [=[#!/bin/sh
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null; then
  for unit in @_iocwall_units@; do
    deb-systemd-helper mask "$unit" >/dev/null || true
  done
fi
if [ "$1" = purge ]; then
  if command -v deb-systemd-helper >/dev/null; then
    for unit in @_iocwall_units@; do
      deb-systemd-helper purge "$unit" >/dev/null || true
      deb-systemd-helper unmask "$unit" >/dev/null || true
    done
  fi
  rm -f "${DPKG_ROOT:-}@_iocwall_etcdir@/api_key"
  rmdir --ignore-fail-on-non-empty "${DPKG_ROOT:-}@_iocwall_etcdir@" 2>/dev/null || true
  rm -rf "${DPKG_ROOT:-}@_iocwall_state@" "${DPKG_ROOT:-}/run/iocwall"
fi
exit 0
]=] @ONLY)
file(CHMOD ${_iocwall_gen}/postinst ${_iocwall_gen}/prerm ${_iocwall_gen}/postrm
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                      WORLD_READ WORLD_EXECUTE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_iocwall_gen}/conffiles ${_iocwall_gen}/postinst ${_iocwall_gen}/prerm
    ${_iocwall_gen}/postrm)
include(CPack)

# The deployment tests, whether or not tests/CMakeLists.txt lists tests/deploy.
get_property(_iocwall_deploy_tests GLOBAL PROPERTY IOCWALL_DEPLOY_TESTS_ADDED)
if(BUILD_TESTING AND NOT _iocwall_deploy_tests)
  add_subdirectory(${PROJECT_SOURCE_DIR}/tests/deploy ${CMAKE_BINARY_DIR}/tests/deploy)
endif()
