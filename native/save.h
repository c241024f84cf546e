// Encoders: quality preserved, metadata stripped, JPEG progressive.
#pragma once

#include <vips/vips8>

#include <cstddef>
#include <cstdint>

#include "deadline.h"
#include "load.h"
#include "vocabulary.h"

namespace iaas {


// Encoded bytes owned by a libvips blob, released exactly once.
class Encoded {
 public:
  Encoded() = default;
  explicit Encoded(VipsBlob* blob) : blob_(blob) {}
  ~Encoded();
  Encoded(Encoded&& other) noexcept : blob_(other.blob_) { other.blob_ = nullptr; }
  Encoded& operator=(Encoded&& other) noexcept;
  Encoded(const Encoded&) = delete;
  Encoded& operator=(const Encoded&) = delete;

  const uint8_t* data() const;
  size_t size() const;

 private:
  VipsBlob* blob_ = nullptr;
};

// The quality that `auto` means: a JPEG from a JPEG keeps the source's own
// quality; otherwise the format's default (JPEG 80, WebP 80, AVIF 50).
// `sourceQuality` speaks for the original when rendering from a working copy:
// >= 1 its JPEG quality, 0 it was no JPEG, -1 use `source` (the input) itself.
int AutoQuality(OutFormat format, const Header& source, int sourceQuality = -1);

// How to encode: the format, its quality (ignored for PNG) and the AVIF
// encoder's effort (0 fastest .. 9 smallest; see the README for its cost).
struct EncodeSettings {
  OutFormat format;
  int quality;
  int avifEffort;
  // A working copy, not a delivery: JPEG baseline without chroma subsampling (the
  // fastest to decode again, nothing visible lost at q95), PNG at zlib level 1.
  bool workingCopy = false;
};

// Encodes `image` (8-bit sRGB, with or without alpha). The deadline can kill
// the evaluation that the encoder drives. Metadata is never written. An image
// with a page height below its height is a strip of frames: WebP and GIF
// write it animated, with its `delay` and `loop`. Any libvips failure while it
// runs throws ENCODE_FAILED, also one of the decoder it drives.
Encoded Save(const vips::VImage& image, const EncodeSettings& settings, Deadline& deadline);

}  // namespace iaas
