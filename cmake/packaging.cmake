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
set(CPACK_PACKAGE_CONTACT "iocwall maintainers <iocwall@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "IOC blocklists (Sekoia.io collections, local lists) enforced in nftables sets")
set(CPACK_PACKAGE_DESCRIPTION
    "iocwall pulls IP blocklists from Sekoia.io IOC collections and local files, merges\n\
them, carves out an allowlist and the host's own addresses, and keeps the result\n\
enforced in nftables interval sets, applying each update as one atomic netlink\n\
transaction. The last good list survives feed outages and reboots (an early-boot\n\
unit restores it before the network). Ships hardened systemd units and man pages.")
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
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nftables")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Maintainer scripts and the conffile list, generated so they follow the paths.
set(_iocwall_conf /etc/iocwall/iocwall.conf)
set(_iocwall_state /var/lib/iocwall)
file(CONFIGURE OUTPUT ${_iocwall_gen}/conffiles CONTENT "${_iocwall_conf}\n")
# $DPKG_ROOT is set when dpkg installs into another root (dpkg --root with
# --force-script-chrootless): then the host's systemd is none of our business.
file(CONFIGURE OUTPUT ${_iocwall_gen}/postinst CONTENT [=[#!/bin/sh
set -e
if [ "$1" = configure ]; then
  chmod 0700 "${DPKG_ROOT:-}@_iocwall_state@"
  if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    # An upgrade restarts a running daemon on the new binary; a first install
    # starts nothing: the collection id and the API key come first.
    systemctl try-restart iocwall.service || true
  fi
fi
exit 0
]=] @ONLY)
file(CONFIGURE OUTPUT ${_iocwall_gen}/prerm CONTENT [=[#!/bin/sh
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now iocwall.service iocwall-restore.service || true
  # The table stays: stopping never opens the gateway. Say how to drop it.
  echo "iocwall: table inet iocwall stays enforced until reboot;" \
       "'nft delete table inet iocwall' removes it now." >&2
fi
exit 0
]=] @ONLY)
file(CONFIGURE OUTPUT ${_iocwall_gen}/postrm CONTENT [=[#!/bin/sh
set -e
if [ "$1" = purge ]; then
  rm -rf "${DPKG_ROOT:-}@_iocwall_state@"
fi
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
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
