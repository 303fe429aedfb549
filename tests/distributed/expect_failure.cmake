# Runs `mpiexec -n NP fail_rank MODE` (NP: 2 unless given) and checks that the job ends with a
# non-zero exit within 30 s and prints what MODE must print (a hang hits the 60 s timeout).
#   cmake -DMPIEXEC=... -DEXE=... -DMODE=<a mode of fail_rank.cpp> [-DNP=4] -P expect_failure.cmake
if(NOT DEFINED NP)
  set(NP 2)
endif()
set(dp "of a distributed::DataParallel over 4 parameters")
set(skip "a backward pass that failed on one rank cannot be skipped")
# What each mode must print: regular expressions, every one of which must match stderr.
set(expect_escape "xgrad.distributed: rank 1 failed: rank 1 found a corrupt batch at step 3")
set(expect_caught "training failed: rank 1 found a corrupt batch at step 3"
                  "xgrad.distributed: rank 1 failed \\(an exception unwound past distributed::Context\\)")
foreach(r 0 1)
  list(APPEND expect_caught_inside
       "xgrad.distributed: rank ${r}: the ranks are out of step: rank 0 is in distributed::all_reduce; rank 1 is at the end of its distributed::Context")
  list(APPEND expect_caught_inside_backward
       "xgrad.distributed: rank ${r}: the ranks are out of step: rank 0 is at the end of backward pass 1 ${dp}; rank 1 is at the end of its distributed::Context")
  list(APPEND expect_fit_batches
       "rank ${r}: training failed: fit: epoch 1: the processes have different numbers of batches \\(rank 0: 3, rank 1: 2\\)")
  list(APPEND expect_loop_batches
       "xgrad.distributed: rank ${r}: the ranks are out of step: rank 0 is at the end of backward pass 3 ${dp}; rank 1 is in distributed::all_reduce")
  list(APPEND expect_loop_batches_end
       "xgrad.distributed: rank ${r}: the ranks are out of step: rank 0 is at the end of backward pass 3 ${dp}; rank 1 is at the end of its distributed::Context")
  list(APPEND expect_skip_batch
       "xgrad.distributed: rank ${r}: the ranks are out of step: rank 0 is at the end of backward pass 2 ${dp}; rank 1 is starting backward pass 3 ${dp} \\(its backward pass 2 ended with an exception\\)[^\n]*${skip}")
  list(APPEND expect_skip_batch_early
       "xgrad.distributed: rank ${r}: the ranks are out of step: rank 0 is at the end of backward pass 3 ${dp}; rank 1 is in distributed::all_reduce")
endforeach()
list(APPEND expect_caught_inside "training failed: rank 1 found a corrupt batch at step 3")
list(APPEND expect_caught_inside_backward "training failed: rank 1 found a corrupt batch at step 3")
list(APPEND expect_skip_batch "skipping batch 2: rank 1: NaN in the gradient of batch 2")
list(APPEND expect_skip_batch_early "skipping batch 2: rank 1: NaN in the gradient of batch 2")
# Four ranks: rank 0 has a batch more than the other three.
foreach(r 0 1 2 3)
  list(APPEND expect_loop_batches_np4
       "xgrad.distributed: rank ${r}: the ranks are out of step: rank 0 is at the end of backward pass 3 ${dp}; ranks 1, 2, 3 are in distributed::all_reduce")
endforeach()
set(expect_stuck "xgrad.distributed: rank 0: waited 2 s in distributed::all_reduce for the other ranks, and some never made a dist call")
set(expected expect_${MODE})
if(NOT NP EQUAL 2)
  set(expected expect_${MODE}_np${NP})
endif()
if(NOT DEFINED ${expected})
  message(FATAL_ERROR "expect_failure.cmake: no expectations for mode '${MODE}' on ${NP} ranks")
endif()

string(TIMESTAMP start "%s")
execute_process(COMMAND "${MPIEXEC}" -n ${NP} "${EXE}" "${MODE}" TIMEOUT 60
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(TIMESTAMP stop "%s")
math(EXPR seconds "${stop} - ${start}")
message(STATUS "exit: ${rc}; ${seconds} s; stderr:\n${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "the job exited 0 although it failed")
endif()
if(rc MATCHES "timeout|Process terminated")
  message(FATAL_ERROR "the job did not end: ${rc}")
endif()
foreach(pattern IN LISTS ${expected})
  if(NOT err MATCHES "${pattern}")
    message(FATAL_ERROR "the job's output lacks: ${pattern}")
  endif()
endforeach()
if(seconds GREATER 30)
  message(FATAL_ERROR "the job took ${seconds} s to end")
endif()
