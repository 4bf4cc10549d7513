# The installable C++ API: `cmake --install build --prefix P` puts
#   P/lib/libcodex_train.so      every codex_core object (the public API is include/codex/codex.h)
#   P/lib/libcodex_spm.so        the SentencePiece shim, found at run time beside libcodex_train.so
#   P/include/codex/codex.h
#   P/lib/cmake/codex_train/     the package: find_package(codex_train) -> codex_train::codex_train
#   P/bin/codex-train
# LibTorch and the other dependencies stay private to the shared library (the header uses only the
# standard library), so a user's project needs no Torch of its own.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

add_library(codex_train SHARED $<TARGET_OBJECTS:codex_core>)
add_library(codex_train::codex_train ALIAS codex_train)
target_link_libraries(codex_train PRIVATE codex_deps)
# A CUDA build's kernels (cmake/Cuda.cmake): codex_core's objects call them, and objects taken with
# $<TARGET_OBJECTS> bring no link dependencies, so the shared library links them itself.
if(TARGET codex_kernels)
  target_link_libraries(codex_train PRIVATE codex_kernels)
endif()
target_include_directories(codex_train PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
                                              $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(codex_train INTERFACE cxx_std_17)
# std::string crosses the API: a user must compile with the same libstdc++ ABI as LibTorch.
if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=([01])")
  target_compile_definitions(codex_train INTERFACE _GLIBCXX_USE_CXX11_ABI=${CMAKE_MATCH_1})
endif()
# $ORIGIN: the shim and the library sit together; link paths: a LibTorch outside the system
# folders (a CUDA build) is still found once installed.
set_target_properties(codex_train PROPERTIES VERSION ${CODEX_VERSION} SOVERSION 0
  INSTALL_RPATH "$ORIGIN" INSTALL_RPATH_USE_LINK_PATH TRUE)
add_dependencies(codex_train codex_spm)

install(TARGETS codex_train EXPORT codex_trainTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS codex_spm LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
set_target_properties(codex-train PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}"
  INSTALL_RPATH_USE_LINK_PATH TRUE)
install(TARGETS codex-train RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/include/codex/codex.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/codex)
install(EXPORT codex_trainTargets NAMESPACE codex_train::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/codex_train)
configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/codex_trainConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/codex_trainConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/codex_train)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/codex_trainConfigVersion.cmake
  VERSION ${CODEX_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/codex_trainConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/codex_trainConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/codex_train)
# The shipped HumanEval problems (and their licence), where an installed codex-train looks for
# them: <prefix>/share/codex-train/data/humaneval/ (eval/humaneval.h resolve_problems_path).
install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/data/humaneval DESTINATION ${CMAKE_INSTALL_DATADIR}/codex-train/data)
