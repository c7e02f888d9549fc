"""Deployment: inference-time rewrites, ONNX export and check, ONNX Runtime sessions, int8 quantization."""
