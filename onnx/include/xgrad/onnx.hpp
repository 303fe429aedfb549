#pragma once
/// \file
/// The onnx module: export a model to ONNX by tracing its forward, check ONNX files,
/// and load the weights of ONNX models (PyTorch's exports too) into xgrad modules.
/// Optional (built when libonnx and protobuf are found; CMake target `xgrad::onnx`,
/// `find_package(xgrad COMPONENTS onnx)`). Example: `#include <xgrad/onnx.hpp>`
#include <xgrad/onnx/export.hpp>
#include <xgrad/onnx/import.hpp>
