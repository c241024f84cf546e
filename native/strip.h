// Lossless removal of private metadata from stored originals: EXIF (camera,
// GPS position, serial numbers), XMP, IPTC and comments go; what decoding
// needs stays (JPEG's JFIF, Adobe and ICC segments; PNG's iCCP, sRGB, gAMA;
// WebP's ICCP). The pixels and their encoding are untouched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vocabulary.h"

namespace iaas {

// The container without its metadata, or an empty vector when nothing was
// removed (or the container is not well-formed enough to edit safely).
// Formats other than JPEG, PNG and WebP are never edited here.
std::vector<uint8_t> StripMetadata(Format format, const uint8_t* data, size_t length);

}  // namespace iaas
