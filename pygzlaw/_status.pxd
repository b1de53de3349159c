# The status every native batch call returns (csrc/common/status.h), shared by all stages.
from libc.stdint cimport int64_t

cdef extern from "common/status.h" namespace "pgz" nogil:
    cdef struct Status:
        int code
        int64_t item
        const char* what
