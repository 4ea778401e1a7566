//! RMBG-2.0 (BiRefNet) background removal through ONNX Runtime
