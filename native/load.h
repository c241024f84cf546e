// Decoding: the accepted loaders only, header first, shrink-on-load second.
#pragma once

#include <vips/vips8>

#include <cstddef>
#include <cstdint>

#include "sniff.h"

namespace iaas {

// What the header says, read without decoding any pixels.
struct Header {
  Format format = Format::Unknown;
  int width = 0;   // as stored, before EXIF orientation
  int height = 0;  // of one page
  int pages = 1;  // as the header declares, uncapped
  int orientation = 1;
  bool hasAlpha = false;
  // A progressive (interlaced) JPEG or PNG: libjpeg cannot shrink those cheaply on load.
  bool interlaced = false;
  int jpegQuality = -1;  // -1 when not a JPEG or no tables were found

  // Width and height as a browser displays the image, after orientation.
  int OrientedWidth() const { return orientation >= 5 ? height : width; }
  int OrientedHeight() const { return orientation >= 5 ? width : height; }
  double Pixels() const { return double(width) * double(height) * double(pages); }
};

// The caller's bytes, wrapped without a copy, with their sniffed format.
// Owns one reference to the libvips blob; the bytes must outlive it.
class Input {
 public:
  Input(const uint8_t* data, size_t length);
  ~Input();
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;

  Format format() const { return format_; }
  const uint8_t* data() const { return data_; }
  size_t length() const { return length_; }

  // Opens the image lazily: libvips reads the header now, pixels on demand.
  // `shrink` > 1 asks the JPEG decoder for a 1/shrink image (DCT scaling);
  // `scale` < 1 asks the WebP decoder for a scaled image. `pages` > 1 loads that
  // many frames of a GIF or WebP as one strip (the first frame only otherwise).
  vips::VImage Open(bool sequential, int shrink = 1, double scale = 1.0, int pages = 1) const;

 private:
  const uint8_t* data_;
  size_t length_;
  Format format_;
  VipsBlob* blob_;
};

// Reads the header of `input`. Throws CORRUPT_IMAGE when it cannot be parsed.
Header ReadHeader(const Input& input);

// The header of an image already opened from `input` (saves a second parse).
Header HeaderOf(const Input& input, const vips::VImage& image);

// Refuses, before any decoding, an image whose header declares more pages
// than `maxPages`, or more pixels than `maxPixels`: the pixels of the first
// `frames` pages (a render keeps no more), or of all pages when `frames` is 0.
// A limit of 0 is no limit.
void CheckPixels(const Header& header, double maxPixels, int maxPages, int frames = 0);

}  // namespace iaas
