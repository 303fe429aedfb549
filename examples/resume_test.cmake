# A CTest test that --resume continues a training example exactly: one run of STEPS steps,
# and one stopped at STEPS/2 and resumed to STEPS, must end with the same numbers in their
# --json files (KEYS) and the same metrics.csv, byte for byte.
#
#   cmake -DEXE=<example> -DDIR=<dir> -DSTEPS=40 "-DARGS=--hidden|16|..." "-DKEYS=loss_last|val_bpc" -P resume_test.cmake
#   (lists split at |, as in smoke_test.cmake)
if(NOT EXE OR NOT DIR OR NOT STEPS OR NOT KEYS)
  message(FATAL_ERROR "resume_test.cmake: pass -DEXE=... -DDIR=... -DSTEPS=... -DKEYS=...")
endif()
string(REPLACE "|" ";" args "${ARGS}")
string(REPLACE "|" ";" keys "${KEYS}")
math(EXPR HALF "${STEPS} / 2")
file(REMOVE_RECURSE "${DIR}")

function(run out steps)
  execute_process(COMMAND "${EXE}" ${args} --steps ${steps} --out "${DIR}/${out}" ${ARGN} --json "${DIR}/${out}.json"
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${EXE} --steps ${steps} --out ${DIR}/${out} ${ARGN} exited with ${rc}")
  endif()
endfunction()
run(whole ${STEPS})
run(resumed ${HALF})
run(resumed ${STEPS} --resume)

file(READ "${DIR}/whole.json" whole)
file(READ "${DIR}/resumed.json" resumed)
foreach(key IN LISTS keys)
  string(JSON a GET "${whole}" ${key})
  string(JSON b GET "${resumed}" ${key})
  if(NOT a STREQUAL b)
    message(FATAL_ERROR "${key} differs: ${a} after ${STEPS} steps, ${b} after ${HALF} + ${HALF} resumed")
  endif()
  message(STATUS "${key}: ${a} both ways")
endforeach()
file(READ "${DIR}/whole/metrics.csv" a)
file(READ "${DIR}/resumed/metrics.csv" b)
if(NOT a STREQUAL b)
  message(FATAL_ERROR "metrics.csv differs:\n${a}\nresumed:\n${b}")
endif()
