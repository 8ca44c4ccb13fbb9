# `cmake --install build [--prefix /usr/local]`: the binaries, an example config in /etc/psp-gateway/ and
# the systemd unit psp-gateway@.service (README.md "Operating").
#
# The config directory is /etc whatever the prefix (GNUInstallDirs would give /usr/local/etc, where nobody
# looks for a daemon's config): PSPGW_SYSCONFDIR, absolute. The unit goes under the prefix
# (lib/systemd/system: /usr/local/lib/systemd/system is on systemd's search path). Its ExecStart names the
# binary under the prefix given at install time (--prefix), so the unit is generated during the install.
include(GNUInstallDirs)
set(PSPGW_SYSCONFDIR "/etc" CACHE PATH "Absolute directory for psp-gateway/ configs (default /etc)")
set(PSPGW_SYSTEMD_UNITDIR "lib/systemd/system" CACHE PATH "systemd unit directory (relative: under the prefix)")

foreach(t psp-gateway pspctl psp-pcap)
  if(TARGET ${t})
    install(TARGETS ${t} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/docs/examples/host1.json DESTINATION ${PSPGW_SYSCONFDIR}/psp-gateway
        RENAME example.json)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(pspgw_unit ${CMAKE_BINARY_DIR}/dist/psp-gateway@.service)
install(CODE "
  set(PSPGW_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(PSPGW_SYSCONFDIR \"${PSPGW_SYSCONFDIR}\")
  set(PSPGW_DOCDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\")
  configure_file(\"${CMAKE_SOURCE_DIR}/dist/psp-gateway@.service.in\" \"${pspgw_unit}\" @ONLY)
")
install(FILES ${pspgw_unit} DESTINATION ${PSPGW_SYSTEMD_UNITDIR})

# The layout of `cmake --install` into a DESTDIR and `systemd-analyze verify` of the unit (no root).
add_test(NAME install_layout COMMAND bash ${CMAKE_SOURCE_DIR}/dist/install_test.sh ${CMAKE_BINARY_DIR})
set_tests_properties(install_layout PROPERTIES LABELS "unit" TIMEOUT 120 SKIP_RETURN_CODE 77)
# sd_notify READY=1 / STOPPING=1 from the real daemon (root, its own network namespace).
if(TARGET psp-gateway)
  add_test(NAME systemd_notify COMMAND python3 ${CMAKE_SOURCE_DIR}/dist/notify_test.py $<TARGET_FILE:psp-gateway>)
  set_tests_properties(systemd_notify PROPERTIES LABELS "e2e" TIMEOUT 120 SKIP_RETURN_CODE 77
                       RESOURCE_LOCK pspgw_netns)
endif()
