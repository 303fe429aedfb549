# Runs `mpiexec -np 2 fail_rank MODE` and checks that the job ends with rank 1's message and a
# non-zero exit within 30 s (a hang on a collective would hit the timeout instead).
#   cmake -DMPIEXEC=... -DEXE=... -DMODE=escape|caught -P expect_failure.cmake
string(TIMESTAMP start "%s")
execute_process(COMMAND "${MPIEXEC}" -n 2 "${EXE}" "${MODE}" TIMEOUT 60
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(TIMESTAMP stop "%s")
math(EXPR seconds "${stop} - ${start}")
message(STATUS "exit: ${rc}; ${seconds} s; stderr:\n${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "the job exited 0 although rank 1 failed")
endif()
if(rc MATCHES "timeout|Process terminated")
  message(FATAL_ERROR "the job did not end: ${rc}")
endif()
if(NOT err MATCHES "rank 1 found a corrupt batch at step 3")
  message(FATAL_ERROR "rank 1's message is not in the job's output")
endif()
if(seconds GREATER 30)
  message(FATAL_ERROR "the job took ${seconds} s to end")
endif()
