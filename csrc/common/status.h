// Status of a batched native call: no exceptions cross the C++/Cython boundary.
#pragma once
#include <cstdint>

namespace pgz {

// code 0 = ok. Otherwise `item` names the failing item (document, sequence) and
// `what` is a static message the binding turns into an exception.
struct Status {
    int code = 0;
    int64_t item = -1;
    const char* what = "";
};

enum StatusCode : int {
    kOk = 0,
    kInvalidArgument = 1,
    kOutOfMemory = 2,
    kBackendError = 3,
};

}  // namespace pgz
