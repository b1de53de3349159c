"""Root test configuration (shared: keep it minimal).

Triton's CPU interpreter must be switched on before anything imports triton (it is read when
kernels are decorated), so it is set here, at collection start, on machines without an NVIDIA
GPU. With a GPU the Triton kernels run natively instead.
"""
import glob
import os

if not glob.glob("/dev/nvidia[0-9]*"):
    os.environ.setdefault("TRITON_INTERPRET", "1")
