#include "sniff.h"

#include <cstring>

namespace iaas {

namespace {

bool StartsWith(const uint8_t* data, size_t length, const char* magic, size_t magicLength) {
  return length >= magicLength && std::memcmp(data, magic, magicLength) == 0;
}

uint32_t ReadBe32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// An ISO-BMFF `ftyp` box naming AVIF as its major or a compatible brand.
// HEVC-coded HEIF is refused: this libvips has no HEVC decoder.
bool IsAvif(const uint8_t* data, size_t length) {
  if (length < 16 || std::memcmp(data + 4, "ftyp", 4) != 0) return false;
  size_t boxSize = ReadBe32(data);
  if (boxSize < 16 || boxSize > length) boxSize = length;
  auto isAvifBrand = [](const uint8_t* brand) {
    return std::memcmp(brand, "avif", 4) == 0 || std::memcmp(brand, "avis", 4) == 0;
  };
  if (isAvifBrand(data + 8)) return true;
  for (size_t offset = 16; offset + 4 <= boxSize; offset += 4) {
    if (isAvifBrand(data + offset)) return true;
  }
  return false;
}

}  // namespace

Format Sniff(const uint8_t* data, size_t length) {
  if (data == nullptr) return Format::Unknown;
  if (StartsWith(data, length, "\xFF\xD8\xFF", 3)) return Format::Jpeg;
  if (StartsWith(data, length, "\x89PNG\r\n\x1A\n", 8)) return Format::Png;
  if (StartsWith(data, length, "GIF87a", 6) || StartsWith(data, length, "GIF89a", 6)) return Format::Gif;
  if (length >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0) {
    return Format::Webp;
  }
  if (IsAvif(data, length)) return Format::Avif;
  if (StartsWith(data, length, "II*\0", 4) || StartsWith(data, length, "MM\0*", 4)) return Format::Tiff;
  return Format::Unknown;
}

}  // namespace iaas
