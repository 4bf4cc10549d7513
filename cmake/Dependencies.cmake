# Every dependency comes from a Debian package (or, on a GPU machine, from a CUDA LibTorch and
# unpacked .deb files under a prefix: see docs/gpu.md). Nothing third-party is vendored.
find_package(Torch REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)

find_path(SENTENCEPIECE_INCLUDE_DIR sentencepiece_processor.h REQUIRED)
find_library(SENTENCEPIECE_LIB sentencepiece REQUIRED)
find_library(SENTENCEPIECE_TRAIN_LIB sentencepiece_train REQUIRED)

# PCRE2 (8-bit, with JIT and Unicode properties): GPT-2's pre-tokenization pattern (tokenizer/bpe.cpp).
find_path(PCRE2_INCLUDE_DIR pcre2.h REQUIRED)
find_library(PCRE2_LIB pcre2-8 REQUIRED)

# libunistring: Unicode NFC, the normalizer of Qwen-family tokenizer.json files (tokenizer/bpe.cpp).
find_path(UNISTRING_INCLUDE_DIR uninorm.h REQUIRED)
find_library(UNISTRING_LIB unistring REQUIRED)

add_library(codex_deps INTERFACE)
# SentencePiece is deliberately NOT linked here: it is reached through the codex_spm shim.
target_include_directories(codex_deps INTERFACE ${TORCH_INCLUDE_DIRS} ${PCRE2_INCLUDE_DIR} ${UNISTRING_INCLUDE_DIR})
target_link_libraries(codex_deps INTERFACE
  ${TORCH_LIBRARIES} yaml-cpp spdlog::spdlog nlohmann_json::nlohmann_json ZLIB::ZLIB
  Threads::Threads ${PCRE2_LIB} ${UNISTRING_LIB} ${CMAKE_DL_LIBS})
if(TORCH_CXX_FLAGS)
  separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(codex_deps INTERFACE ${_torch_flags})
endif()
