// Estimates the quality a JPEG was saved at, from its quantisation tables.
#pragma once

#include <cstddef>
#include <cstdint>

namespace iaas {

// The IJG quality (1..100) whose scaled Annex K tables best match the file's
// DQT tables, or -1 when the file has no luminance table.
int EstimateJpegQuality(const uint8_t* data, size_t length);

}  // namespace iaas
