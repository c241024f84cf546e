// Input formats, detected from magic bytes only, never from a file name.
#pragma once

#include <cstddef>
#include <cstdint>

namespace iaas {

enum class Format { Unknown, Jpeg, Png, Gif, Webp, Avif, Tiff };

// Detects one of the accepted formats from the first bytes of `data`.
Format Sniff(const uint8_t* data, size_t length);

// The public name of a format: "jpeg", "png", "gif", "webp", "avif", "tiff".
const char* FormatName(Format format);

}  // namespace iaas
