# check_test_names.cmake — run as `cmake -DBIN=<catch test program> -P ...`.
# catch_discover_tests cuts a test name at ';' (CMake's list separator): the
# ctest entry made from it matches no test and passes without running
# anything.  Such names are refused here.
execute_process(COMMAND "${BIN}" --list-test-names-only OUTPUT_VARIABLE names)
string(REPLACE ";" "<SEMICOLON>" names "${names}")
string(REPLACE "\n" ";" lines "${names}")
set(bad "")
foreach(line IN LISTS lines)
  if(line MATCHES "<SEMICOLON>")
    string(REPLACE "<SEMICOLON>" ";" line "${line}")
    string(APPEND bad "  ${line}\n")
  endif()
endforeach()
if(lines STREQUAL "")
  message(FATAL_ERROR "${BIN} listed no tests")
endif()
if(NOT bad STREQUAL "")
  message(FATAL_ERROR "test names with ';' (ctest would run none of them; use another separator):\n${bad}")
endif()
