# The instruction set xgrad's kernels are compiled for.
#
# xtensor/xsimd choose the SIMD width at compile time, so these flags decide which CPUs the
# built libraries run on. The default is a portable baseline, not the build machine:
#   x86-64   -march=x86-64-v3 (AVX2, FMA, BMI1/2: Intel Haswell 2013+, AMD Excavator/Zen+,
#            Intel Atom Gracemont 2021+). XGRAD_ARCH=x86-64-v2 (SSE4.2, POPCNT: Nehalem 2008+)
#            for older CPUs; XGRAD_ARCH="" for the compiler's own baseline.
#   others   the compiler's default (AArch64's baseline already has NEON).
#   XGRAD_NATIVE=ON   -march=native instead: fastest here, may die with SIGILL elsewhere.
# GEMM, the bulk of a training step, goes to OpenBLAS, which picks its kernels at run time
# whatever these flags say. Why v3 and not v2, and why no runtime dispatch: docs/install.md ("Which CPUs a build runs on").
#
# Sets XGRAD_ARCH_FLAGS (the flags, a list) and XGRAD_ARCH_DESCRIPTION (what they mean here,
# for bench output), and provides xgrad_target_arch(<target>) to apply them PRIVATE.
include_guard(GLOBAL)
include(CheckCXXCompilerFlag)

option(XGRAD_NATIVE "Tune for the build machine (-march=native): the libraries may not run on other CPUs" OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(xgrad_default_arch x86-64-v3)
else()
  set(xgrad_default_arch "")
endif()
set(XGRAD_ARCH "${xgrad_default_arch}" CACHE STRING
  "-march=<XGRAD_ARCH> unless XGRAD_NATIVE (x86-64 default: x86-64-v3; empty: the compiler's default)")

set(XGRAD_ARCH_FLAGS "")
if(XGRAD_NATIVE)
  set(XGRAD_ARCH_FLAGS -march=native)
  # Name what native meant on this machine, for bench output: gcc resolves it (e.g. rocketlake).
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -march=native -Q --help=target
    OUTPUT_VARIABLE xgrad_native_help ERROR_QUIET RESULT_VARIABLE xgrad_native_rc)
  if(xgrad_native_rc EQUAL 0 AND xgrad_native_help MATCHES "-march=[ \t]+([^ \t\n]+)")
    set(XGRAD_ARCH_DESCRIPTION "-march=native (${CMAKE_MATCH_1})")
  else()
    set(XGRAD_ARCH_DESCRIPTION "-march=native")
  endif()
elseif(NOT XGRAD_ARCH STREQUAL "")
  check_cxx_compiler_flag(-march=${XGRAD_ARCH} xgrad_have_march_${XGRAD_ARCH})
  if(NOT xgrad_have_march_${XGRAD_ARCH})
    message(FATAL_ERROR "xgrad: ${CMAKE_CXX_COMPILER} does not accept -march=${XGRAD_ARCH} "
      "(x86-64-v2/v3 need GCC 11 or Clang 12); set XGRAD_ARCH to a -march value it knows, or to \"\"")
  endif()
  set(XGRAD_ARCH_FLAGS -march=${XGRAD_ARCH})
  set(XGRAD_ARCH_DESCRIPTION "-march=${XGRAD_ARCH}")
else()
  set(XGRAD_ARCH_DESCRIPTION "compiler default (${CMAKE_SYSTEM_PROCESSOR})")
endif()
message(STATUS "xgrad: kernels compiled for ${XGRAD_ARCH_DESCRIPTION}")

function(xgrad_target_arch target)
  target_compile_options(${target} PRIVATE ${XGRAD_ARCH_FLAGS})
endfunction()
