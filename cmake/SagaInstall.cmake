include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(DIRECTORY engine/include/saga dsl/include/saga DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS saga_engine saga_memory saga_sqlite saga_dsl EXPORT sagaTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT sagaTargets NAMESPACE saga:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/saga)
# saga::kafka apart: a consumer without librdkafka still finds the rest.
install(DIRECTORY adapters/kafka/include/saga DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS saga_kafka EXPORT sagaKafkaTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT sagaKafkaTargets NAMESPACE saga:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/saga)
configure_package_config_file(cmake/sagaConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/sagaConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/saga)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/sagaConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/sagaConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/sagaConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/saga)
# Installed targets carry the same names as the in-tree aliases: saga::engine, saga::sqlite...
foreach(t engine memory sqlite dsl kafka)
  set_target_properties(saga_${t} PROPERTIES EXPORT_NAME ${t})
endforeach()
