# CUDA build mode (-DCODEX_CUDA=ON, what `scripts/build.sh --cuda` passes): the CUDA kernels under
# kernels/ are compiled into codex_kernels and linked into codex_core, which then dispatches to them
# (CODEX_WITH_CUDA_KERNELS); the found LibTorch must be a CUDA one with NCCL (CODEX_WITH_NCCL:
# dist.backend=nccl), else configuring fails here with one line saying so.
option(CODEX_CUDA "build the CUDA kernels against a CUDA LibTorch (needs nvcc)" OFF)

# Does this LibTorch carry c10d's NCCL process group? Header present and symbols exported.
function(codex_torch_has_nccl out)
  set(${out} FALSE PARENT_SCOPE)
  set(_hdr "")
  foreach(d ${TORCH_INCLUDE_DIRS})
    if(EXISTS "${d}/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp")
      set(_hdr "${d}")
    endif()
  endforeach()
  if(NOT _hdr)
    return()
  endif()
  set(_libs "")
  foreach(l ${TORCH_LIBRARIES} ${TORCH_CUDA_LIBRARIES})
    if(l MATCHES "torch_cuda" AND EXISTS "${l}")
      list(APPEND _libs "${l}")
    elseif(TARGET ${l})
      get_target_property(_loc ${l} IMPORTED_LOCATION)
      if(_loc AND _loc MATCHES "torch_cuda")
        list(APPEND _libs "${_loc}")
      endif()
    endif()
  endforeach()
  if(NOT _libs AND TORCH_INSTALL_PREFIX)
    file(GLOB _libs "${TORCH_INSTALL_PREFIX}/lib/libtorch_cuda*.so")
  endif()
  find_program(_nm nm)
  foreach(l ${_libs})
    execute_process(COMMAND ${_nm} -D --defined-only "${l}" OUTPUT_VARIABLE _syms ERROR_QUIET)
    if(_syms MATCHES "ProcessGroupNCCL")
      set(${out} TRUE PARENT_SCOPE)
      return()
    endif()
  endforeach()
endfunction()

# The architectures the kernels are built for. A CUDA find_package(Torch) enables the CUDA language
# itself, which fixes CMAKE_CUDA_ARCHITECTURES to nvcc's default (sm_75 for nvcc 13: no bf16 MMA),
# so the kernels target sets its own list rather than trusting the global one.
set(CODEX_CUDA_ARCHS "80;90" CACHE STRING "CUDA architectures of the codex kernels (sm_80 or newer)")

if(CODEX_CUDA)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES ${CODEX_CUDA_ARCHS})
  endif()
  # One CUDA runtime in the process: LibTorch links libcudart.so, so the kernels (and every target
  # made after this point: the program, libcodex_train, the tests) link the shared one too, not
  # CMake's default static cudart.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  foreach(_arch ${CODEX_CUDA_ARCHS})
    if(_arch MATCHES "^([0-9]+)" AND CMAKE_MATCH_1 LESS 80)
      message(FATAL_ERROR "CODEX_CUDA_ARCHS=${CODEX_CUDA_ARCHS}: the kernels need sm_80 or newer (bf16 MMA)")
    endif()
  endforeach()
  if(NOT TORCH_CUDA_LIBRARIES AND NOT TORCH_LIBRARIES MATCHES "torch_cuda|c10_cuda")
    message(FATAL_ERROR "CODEX_CUDA=ON: the LibTorch found (${Torch_DIR}) is not a CUDA build; point "
                        "CMAKE_PREFIX_PATH at a CUDA one (python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')")
  endif()
  codex_torch_has_nccl(_nccl)
  if(NOT _nccl)
    message(FATAL_ERROR "CODEX_CUDA=ON: the LibTorch found (${Torch_DIR}) has no NCCL (no ProcessGroupNCCL), "
                        "which the CUDA build needs for dist.backend=nccl")
  endif()
  file(GLOB_RECURSE CODEX_KERNEL_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/*.cu)
  add_library(codex_kernels STATIC ${CODEX_KERNEL_SOURCES})
  target_include_directories(codex_kernels PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/kernels)
  set_target_properties(codex_kernels PROPERTIES POSITION_INDEPENDENT_CODE ON CUDA_SEPARABLE_COMPILATION OFF
                                                 CUDA_ARCHITECTURES "${CODEX_CUDA_ARCHS}" CUDA_RUNTIME_LIBRARY Shared)
  target_compile_options(codex_kernels PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3 --use_fast_math -lineinfo>)
  # codex_core's objects go into the program, the tests and libcodex_train (cmake/CodexPackage.cmake
  # links the kernels there too: object libraries do not carry their link dependencies along).
  target_link_libraries(codex_core PUBLIC codex_kernels)
  target_compile_definitions(codex_core PUBLIC CODEX_WITH_CUDA_KERNELS CODEX_WITH_NCCL USE_C10D_NCCL)
  message(STATUS "codex: CUDA build (kernels for sm_${CODEX_CUDA_ARCHS}, NCCL on)")
endif()
