"""Export the noise model and the student to ONNX / TensorRT files (with metadata) that the runtime reads."""
