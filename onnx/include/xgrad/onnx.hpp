#pragma once
/// \file The onnx module: export a model to ONNX by tracing its forward, and check ONNX files.
/// Optional (built when libonnx and protobuf are found; CMake target `xgrad::onnx`,
/// `find_package(xgrad COMPONENTS onnx)`). Example: `#include <xgrad/onnx.hpp>`
#include <xgrad/onnx/export.hpp>
