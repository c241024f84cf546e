// The one place C++ failures become JavaScript errors (kept apart from
// errors.h so the decode path also builds without N-API, for the fuzzer).
#pragma once

#include <napi.h>

#include "errors.h"

namespace iaas {

// Runs `body`, turning every C++ exception into a JavaScript Error with a
// `code` property. Nothing thrown in C++ crosses into JavaScript unhandled.
Napi::Value Guard(const Napi::CallbackInfo& info, Napi::Value (*body)(const Napi::CallbackInfo&));

}  // namespace iaas
