# The API reference: `cmake --build <build> --target doxygen` writes <build>/docs/html from the
# public headers (docs/Doxyfile.in). The target exists when XGRAD_BUILD_DOCS is on and Doxygen
# is found, and is not part of `all`. It fails on any Doxygen warning, an undocumented public
# symbol included.
option(XGRAD_BUILD_DOCS "Add the `doxygen` target (API reference) when Doxygen is found" ON)
if(NOT XGRAD_BUILD_DOCS)
  return()
endif()
find_package(Doxygen)
if(NOT DOXYGEN_FOUND)
  message(STATUS "xgrad: Doxygen not found, no `doxygen` target (scripts/install-deps.sh installs it)")
  return()
endif()

set(_xgrad_doc_dirs core nn optim train distributed onnx)
set(_xgrad_doc_input ${CMAKE_CURRENT_SOURCE_DIR}/include)
foreach(dir IN LISTS _xgrad_doc_dirs)
  if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/include)  # onnx/ is optional
    list(APPEND _xgrad_doc_input ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/include)
  endif()
endforeach()
# Headers left out of the reference (relative to the source directory): none at present.
set(_xgrad_doc_exclude)
list(TRANSFORM _xgrad_doc_exclude PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/)

list(JOIN _xgrad_doc_input " " XGRAD_DOXYGEN_INPUT)
list(JOIN _xgrad_doc_exclude " " XGRAD_DOXYGEN_EXCLUDE)
set(XGRAD_DOXYGEN_OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/docs)
set(XGRAD_DOXYGEN_STRIP ${CMAKE_CURRENT_SOURCE_DIR})
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/docs/Doxyfile.in ${CMAKE_CURRENT_BINARY_DIR}/Doxyfile @ONLY)
file(MAKE_DIRECTORY ${XGRAD_DOXYGEN_OUTPUT})
add_custom_target(doxygen
  COMMAND Doxygen::doxygen ${CMAKE_CURRENT_BINARY_DIR}/Doxyfile
  WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
  COMMENT "Doxygen: API reference in ${XGRAD_DOXYGEN_OUTPUT}/html"
  VERBATIM)
