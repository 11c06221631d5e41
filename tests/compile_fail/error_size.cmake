# Compiles SOURCE (-fsyntax-only), which must fail with an error matching EXPECTED in at most
# MAX_LINES lines of compiler output. Run by ctest: cmake -DCXX=... -DSOURCE=... -DINCLUDE=...
# -DEXPECTED=... -DMAX_LINES=... -P error_size.cmake
execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only -fno-diagnostics-color -I${INCLUDE} ${SOURCE}
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET TIMEOUT 300)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but must not")
endif()
string(REGEX MATCHALL "\n" newlines "${err}")
list(LENGTH newlines lines)
if(NOT err MATCHES "${EXPECTED}")
  message(FATAL_ERROR "the error does not say \"${EXPECTED}\":\n${err}")
endif()
if(lines GREATER MAX_LINES)
  message(FATAL_ERROR "the error takes ${lines} lines, more than ${MAX_LINES}")
endif()
message(STATUS "${lines} lines:\n${err}")
