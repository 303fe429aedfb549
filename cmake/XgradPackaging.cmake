# pkg-config files and the Debian package (`cpack -G DEB` in the build directory).
include_guard(GLOBAL)

# pkg-config: xgrad.pc (core, nn, optim, train) and, with their modules, xgrad-distributed.pc
# and xgrad-onnx.pc.
#   c++ -std=c++20 app.cpp $(pkg-config --cflags --libs xgrad)
# Static libraries leave their dependencies to the final link, so there OpenBLAS (and MPI for
# dist, protobuf and Debian's libonnx, which has no .pc, for onnx) are in Requires / Libs;
# shared ones record them themselves, so they are only Requires.private / Libs.private.
# prefix is relative to the .pc file, so an installed tree can be moved (dpkg -x, a tarball).
set(xgrad_pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH XGRAD_PC_TO_PREFIX /prefix/${xgrad_pc_dir} /prefix)
string(REGEX REPLACE "/$" "" XGRAD_PC_TO_PREFIX "${XGRAD_PC_TO_PREFIX}")
if(BUILD_SHARED_LIBS)
  set(XGRAD_PC_REQUIRES fmt)
  set(XGRAD_PC_REQUIRES_PRIVATE openblas)
  set(XGRAD_DISTRIBUTED_PC_REQUIRES xgrad)
  set(XGRAD_DISTRIBUTED_PC_REQUIRES_PRIVATE mpi-cxx)
  set(XGRAD_ONNX_PC_REQUIRES xgrad)
  set(XGRAD_ONNX_PC_REQUIRES_PRIVATE protobuf)
  set(XGRAD_ONNX_PC_LIBS "")
  set(XGRAD_ONNX_PC_LIBS_PRIVATE "-lonnx -lonnx_proto")
else()
  set(XGRAD_PC_REQUIRES "fmt, openblas")
  set(XGRAD_PC_REQUIRES_PRIVATE "")
  set(XGRAD_DISTRIBUTED_PC_REQUIRES "xgrad, mpi-cxx")
  set(XGRAD_DISTRIBUTED_PC_REQUIRES_PRIVATE "")
  set(XGRAD_ONNX_PC_REQUIRES "xgrad, protobuf")
  set(XGRAD_ONNX_PC_REQUIRES_PRIVATE "")
  set(XGRAD_ONNX_PC_LIBS "-lonnx -lonnx_proto")
  set(XGRAD_ONNX_PC_LIBS_PRIVATE "")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/xgrad.pc.in ${CMAKE_BINARY_DIR}/xgrad.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/xgrad.pc DESTINATION ${xgrad_pc_dir})
if(XGRAD_HAVE_DISTRIBUTED)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/xgrad-distributed.pc.in ${CMAKE_BINARY_DIR}/xgrad-distributed.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/xgrad-distributed.pc DESTINATION ${xgrad_pc_dir})
endif()
if(XGRAD_HAVE_ONNX)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/xgrad-onnx.pc.in ${CMAKE_BINARY_DIR}/xgrad-onnx.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/xgrad-onnx.pc DESTINATION ${xgrad_pc_dir})
endif()

# Debian package: everything `cmake --install` puts in the prefix, under /usr. One package,
# libxgrad-dev, with the headers, the libraries (static or shared, as built), the CMake
# package and the .pc files. MPI is needed only by the dist component, so it is a Recommends.
set(CPACK_PACKAGE_NAME libxgrad-dev)
set(CPACK_PACKAGE_VENDOR xgrad)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "C++20 deep learning with dynamic autograd (RNN/LSTM/GRU) - development files")
set(CPACK_PACKAGE_CONTACT "xgrad <dev@xgrad>")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
# Built for a baseline, not the packaging machine: say which in the description.
set(CPACK_PACKAGE_DESCRIPTION "xgrad: tensors, autograd, layers, optimizers and training tools.\nKernels compiled for ${XGRAD_ARCH_DESCRIPTION}.")
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libfmt-dev, libopenblas-dev")
set(xgrad_recommends "")
if(XGRAD_HAVE_DISTRIBUTED)
  list(APPEND xgrad_recommends libopenmpi-dev)
endif()
if(XGRAD_HAVE_ONNX)
  list(APPEND xgrad_recommends libonnx-dev libprotobuf-dev)
endif()
if(xgrad_recommends)
  list(JOIN xgrad_recommends ", " CPACK_DEBIAN_PACKAGE_RECOMMENDS)
endif()
include(CPack)
