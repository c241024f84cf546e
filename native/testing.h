// Fixture helpers: tests generate their images with the addon itself.
#pragma once

#include <napi.h>

namespace iaas {

// encodeRaw(pixels, { width, height, channels, format, quality?, orientation?, cmyk?, pageHeight?, delays?, loop? })
Napi::Value EncodeRaw(const Napi::CallbackInfo& info);

// decodeRaw(input) -> { data, width, height, channels }: 8-bit sRGB pixels as stored.
Napi::Value DecodeRaw(const Napi::CallbackInfo& info);

// libvipsLoaderFor(input) -> the loader libvips' own sniffing would pick, or null
// when none is allowed (untrusted loaders are blocked).
Napi::Value LibvipsLoaderFor(const Napi::CallbackInfo& info);

}  // namespace iaas
