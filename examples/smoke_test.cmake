# A CTest smoke test for a training example: runs it with tiny settings and its --json flag,
# then checks that the run learned something — the JSON's "loss_last" is below "loss_first"
# (the training loss of the first and last epoch or logging interval).
#
#   cmake -DEXE=<example> -DJSON=<file> "-DARGS=--epochs|2|..." -P smoke_test.cmake   (arguments split at |)
if(NOT EXE OR NOT JSON)
  message(FATAL_ERROR "smoke_test.cmake: pass -DEXE=... and -DJSON=...")
endif()
string(REPLACE "|" ";" args "${ARGS}")
file(REMOVE "${JSON}")
execute_process(COMMAND "${EXE}" ${args} --json "${JSON}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} exited with ${rc}")
endif()
file(READ "${JSON}" metrics)
string(JSON first GET "${metrics}" loss_first)
string(JSON last GET "${metrics}" loss_last)
message(STATUS "training loss: first ${first}, last ${last}")
# if(LESS) compares the two as real numbers (C doubles).
if(NOT last LESS first)
  message(FATAL_ERROR "the training loss did not go down: first ${first}, last ${last}")
endif()
