#include "strip.h"

#include <algorithm>
#include <cstring>

namespace iaas {

namespace {

uint32_t Be16(const uint8_t* p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t Be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
uint32_t Le32(const uint8_t* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24); }
void PutLe32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}

void Append(std::vector<uint8_t>& out, const uint8_t* from, size_t count) { out.insert(out.end(), from, from + count); }

// APP0 (JFIF), APP2 holding an ICC profile and APP14 (Adobe colour transform) are needed to
// decode the colours right; every other APPn (EXIF and XMP in APP1, IPTC in APP13, ...) and
// COM are metadata.
bool IsJpegMetadata(uint8_t marker, const uint8_t* payload, size_t size) {
  if (marker == 0xFE) return true;
  if (marker < 0xE0 || marker > 0xEF) return false;
  if (marker == 0xE0 || marker == 0xEE) return false;
  if (marker == 0xE2) return !(size >= 12 && std::memcmp(payload, "ICC_PROFILE\0", 12) == 0);
  return true;
}

std::vector<uint8_t> StripJpeg(const uint8_t* data, size_t length) {
  if (length < 4 || data[0] != 0xFF || data[1] != 0xD8) return {};
  std::vector<uint8_t> out;
  out.reserve(length);
  Append(out, data, 2);
  bool removed = false;
  size_t at = 2;
  while (at + 4 <= length) {
    if (data[at] != 0xFF) return {};
    uint8_t marker = data[at + 1];
    if (marker == 0xFF) {  // fill byte
      at++;
      continue;
    }
    // The scan and everything after it (entropy-coded data, later scans) is copied as it is.
    if (marker == 0xDA || marker == 0xD9) break;
    if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      Append(out, data + at, 2);
      at += 2;
      continue;
    }
    size_t size = Be16(data + at + 2);
    if (size < 2 || at + 2 + size > length) return {};
    if (IsJpegMetadata(marker, data + at + 4, size - 2)) {
      removed = true;
    } else {
      Append(out, data + at, 2 + size);
    }
    at += 2 + size;
  }
  if (!removed) return {};
  Append(out, data + at, length - at);
  return out;
}

bool IsPngMetadata(const uint8_t* type) {
  for (const char* name : {"tEXt", "zTXt", "iTXt", "eXIf", "tIME"}) {
    if (std::memcmp(type, name, 4) == 0) return true;
  }
  return false;
}

std::vector<uint8_t> StripPng(const uint8_t* data, size_t length) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (length < 8 || std::memcmp(data, kSignature, 8) != 0) return {};
  std::vector<uint8_t> out;
  out.reserve(length);
  Append(out, data, 8);
  bool removed = false;
  size_t at = 8;
  while (at + 12 <= length) {
    size_t size = Be32(data + at);
    if (size > length - at - 12) return {};
    size_t chunk = 12 + size;  // length, type, data, CRC
    if (IsPngMetadata(data + at + 4)) {
      removed = true;
    } else {
      Append(out, data + at, chunk);
    }
    bool end = std::memcmp(data + at + 4, "IEND", 4) == 0;
    at += chunk;
    if (end) break;
  }
  if (!removed) return {};
  return out;
}

std::vector<uint8_t> StripWebp(const uint8_t* data, size_t length) {
  if (length < 20 || std::memcmp(data, "RIFF", 4) != 0 || std::memcmp(data + 8, "WEBP", 4) != 0) return {};
  size_t riffEnd = std::min<size_t>(length, size_t(Le32(data + 4)) + 8);
  std::vector<uint8_t> out;
  out.reserve(length);
  Append(out, data, 12);
  bool removed = false;
  size_t vp8x = 0;  // offset of the VP8X payload in `out`, 0 when there is none
  size_t at = 12;
  while (at + 8 <= riffEnd) {
    size_t size = Le32(data + at + 4);
    size_t padded = size + (size & 1);
    if (padded > riffEnd - at - 8) return {};
    const uint8_t* fourcc = data + at;
    if (std::memcmp(fourcc, "EXIF", 4) == 0 || std::memcmp(fourcc, "XMP ", 4) == 0) {
      removed = true;
    } else {
      if (std::memcmp(fourcc, "VP8X", 4) == 0 && size >= 1) vp8x = out.size() + 8;
      Append(out, data + at, 8 + padded);
    }
    at += 8 + padded;
  }
  if (!removed) return {};
  // The VP8X flags announce EXIF (bit 3) and XMP (bit 2); they must match the chunks present.
  if (vp8x != 0) out[vp8x] &= uint8_t(~0x0C);
  PutLe32(out.data() + 4, uint32_t(out.size() - 8));
  return out;
}

}  // namespace

std::vector<uint8_t> StripMetadata(Format format, const uint8_t* data, size_t length) {
  switch (format) {
    case Format::Jpeg: return StripJpeg(data, length);
    case Format::Png: return StripPng(data, length);
    case Format::Webp: return StripWebp(data, length);
    default: return {};
  }
}

}  // namespace iaas
