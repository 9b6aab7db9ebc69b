# run_consumer.cmake — build and run tests/consumer/project against ember,
# the way a downstream project would.  Invoked by ctest as
#   cmake -DMODE=add_subdirectory|find_package -DEMBER_SOURCE_DIR=... \
#         -DEMBER_BINARY_DIR=... -DWORK_DIR=... -DCONSUMER_SOURCE_DIR=... \
#         -DGENERATOR=... -DCXX_COMPILER=... -DBUILD_CONFIG=... \
#         [-DMAKE_PROGRAM=...] [-DTOOLCHAIN_FILE=...] [-DCXX_FLAGS=...] \
#         -P run_consumer.cmake
#
#   add_subdirectory: configure the consumer with -DEMBER_SOURCE_DIR so it
#                     builds ember from source as a subproject.
#   find_package:     `cmake --install` the parent build tree into
#                     WORK_DIR/prefix, then configure the consumer with
#                     -DCMAKE_PREFIX_PATH=<prefix> (find_package(ember CONFIG)).
# Either way: build, run the program, check what it printed.
cmake_minimum_required(VERSION 3.25)

foreach(v MODE EMBER_SOURCE_DIR WORK_DIR CONSUMER_SOURCE_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: ${v} is not set")
  endif()
endforeach()

set(build_dir "${WORK_DIR}/build")
set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(config_args)
set(build_config_args)
if(BUILD_CONFIG)
  list(APPEND config_args "-DCMAKE_BUILD_TYPE=${BUILD_CONFIG}")
  list(APPEND build_config_args --config "${BUILD_CONFIG}")
endif()
if(MAKE_PROGRAM)
  list(APPEND config_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(TOOLCHAIN_FILE)
  list(APPEND config_args "-DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN_FILE}")
endif()
if(CXX_FLAGS)
  list(APPEND config_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()

function(step what)
  message(STATUS "consumer (${MODE}): ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer (${MODE}): ${what} failed (${rc})")
  endif()
endfunction()

if(MODE STREQUAL "add_subdirectory")
  list(APPEND config_args "-DEMBER_SOURCE_DIR=${EMBER_SOURCE_DIR}")
elseif(MODE STREQUAL "find_package")
  if(NOT EMBER_BINARY_DIR)
    message(FATAL_ERROR "run_consumer.cmake: EMBER_BINARY_DIR is not set")
  endif()
  step("install ember into ${prefix}"
    "${CMAKE_COMMAND}" --install "${EMBER_BINARY_DIR}" --prefix "${prefix}" ${build_config_args})
  list(APPEND config_args "-DCMAKE_PREFIX_PATH=${prefix}")
else()
  message(FATAL_ERROR "run_consumer.cmake: MODE must be add_subdirectory or find_package, not '${MODE}'")
endif()

step("configure"
  "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${build_dir}" -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" ${config_args})

if(MODE STREQUAL "find_package")
  # Make sure the package came from our prefix, not from a system install.
  file(STRINGS "${build_dir}/CMakeCache.txt" ember_dir_line REGEX "^ember_DIR:")
  string(REGEX REPLACE "^ember_DIR:[A-Z]+=" "" ember_dir "${ember_dir_line}")
  file(REAL_PATH "${prefix}" real_prefix)
  file(REAL_PATH "${ember_dir}" real_ember_dir)
  string(FIND "${real_ember_dir}/" "${real_prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "consumer (find_package): found ember in '${ember_dir}', expected it under '${prefix}'")
  endif()
endif()

step("build" "${CMAKE_COMMAND}" --build "${build_dir}" ${build_config_args})

foreach(prog_and_expect "ember_consumer|ember consumer: sum=55 rc=0" "ember_consumer_io|ember consumer io: waited=1 rc=0")
  string(REPLACE "|" ";" pe "${prog_and_expect}")
  list(GET pe 0 prog)
  list(GET pe 1 expect)
  set(exe "${build_dir}/${prog}")
  if(NOT EXISTS "${exe}" AND BUILD_CONFIG)
    set(exe "${build_dir}/${BUILD_CONFIG}/${prog}")
  endif()
  message(STATUS "consumer (${MODE}): run ${exe}")
  execute_process(COMMAND "${exe}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
  message(STATUS "consumer (${MODE}): output: ${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer (${MODE}): ${prog} failed (${rc})")
  endif()
  if(NOT out MATCHES "${expect}")
    message(FATAL_ERROR "consumer (${MODE}): unexpected output from ${prog}")
  endif()
endforeach()
message(STATUS "consumer (${MODE}): ok")
