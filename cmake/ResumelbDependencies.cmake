# Finds every third-party library and exposes each as one imported/interface target:
#   rlb::uv rlb::llhttp rlb::rapidjson rlb::zookeeper rlb::re2 gflags glog::glog
#   Python3::Python (embed) OpenSSL::Crypto
# All come from Debian packages installed by deploy/install-deps.sh.
find_package(PkgConfig REQUIRED)

pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv>=1.44)
add_library(rlb::uv ALIAS PkgConfig::UV)

pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
add_library(rlb::re2 ALIAS PkgConfig::RE2)

find_package(Threads REQUIRED)
find_package(gflags REQUIRED)
find_package(glog 0.6 REQUIRED)
# libcrypto: HMAC-SHA256 and random nonces for link authentication (common/link_auth.h).
find_package(OpenSSL REQUIRED COMPONENTS Crypto)

find_package(RapidJSON REQUIRED)
add_library(rlb_rapidjson INTERFACE)
target_include_directories(rlb_rapidjson SYSTEM INTERFACE ${RAPIDJSON_INCLUDE_DIRS})
add_library(rlb::rapidjson ALIAS rlb_rapidjson)

# ZooKeeper C client: no CMake config or pkg-config file in Debian.
find_path(ZOOKEEPER_INCLUDE_DIR zookeeper/zookeeper.h REQUIRED)
find_library(ZOOKEEPER_MT_LIBRARY zookeeper_mt REQUIRED)
add_library(rlb_zookeeper INTERFACE)
target_include_directories(rlb_zookeeper SYSTEM INTERFACE ${ZOOKEEPER_INCLUDE_DIR})
target_link_libraries(rlb_zookeeper INTERFACE ${ZOOKEEPER_MT_LIBRARY})
target_compile_definitions(rlb_zookeeper INTERFACE THREADED)  # declares the sync API
add_library(rlb::zookeeper ALIAS rlb_zookeeper)

# llhttp: Debian's node-llhttp ships the generated C sources, no -dev package.
find_path(LLHTTP_INCLUDE_DIR llhttp.h PATHS /usr/share/include/llhttp REQUIRED)
find_path(LLHTTP_SOURCE_DIR llhttp.c PATHS /usr/share/llhttp REQUIRED NO_DEFAULT_PATH)
add_library(rlb_llhttp STATIC
  ${LLHTTP_SOURCE_DIR}/api.c ${LLHTTP_SOURCE_DIR}/http.c ${LLHTTP_SOURCE_DIR}/llhttp.c)
target_include_directories(rlb_llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
# Debian builds llhttp lenient by default; strict mode rejects "Ho st:" and "Host :".
target_compile_definitions(rlb_llhttp PUBLIC LLHTTP_STRICT_MODE=1)
target_compile_options(rlb_llhttp PRIVATE -w)
set_target_properties(rlb_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON)
add_library(rlb::llhttp ALIAS rlb_llhttp)

# CPython 3.11 from Debian (never pyenv's: same SONAME, different stdlib).
if(NOT Python3_EXECUTABLE)
  set(Python3_EXECUTABLE /usr/bin/python3)
endif()
find_package(Python3 3.11 EXACT REQUIRED COMPONENTS Interpreter Development.Embed)

if(RESUMELB_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
  include(Catch)
endif()
