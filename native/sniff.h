// Input formats, detected from magic bytes only, never from a file name.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vocabulary.h"

namespace iaas {

// Detects one of the accepted formats from the first bytes of `data`.
Format Sniff(const uint8_t* data, size_t length);

}  // namespace iaas
