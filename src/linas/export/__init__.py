"""Export: ONNX export and ONNX Runtime parity."""

from linas.export.onnx import export_onnx, onnx_parity

__all__ = ["export_onnx", "onnx_parity"]
