// What GET /{id}.json tells of an original without its bytes: the dominant
// colour, and the pixels of its placeholders (a BlurHash, encoded in
// TypeScript from `pixels`, and a blurred WebP of at most 32 px).
#pragma once

#include <vips/vips8>

#include <array>
#include <cstdint>
#include <vector>

#include "deadline.h"
#include "load.h"
#include "save.h"

namespace iaas {

// The side the summary works at: the decode is shrunk on load to about this (shorter side).
inline constexpr int kSummaryWorkingSide = 64;

// A rectangle in displayed pixels (after EXIF orientation).
struct Rect {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

struct Summary {
  // The most common colour (16 levels a channel, opaque pixels only), as the mean of its pixels.
  std::array<uint8_t, 3> dominant{};
  // RGBA pixels at most 16 px on the long side, flattened onto white (alpha 255): for the BlurHash.
  std::vector<uint8_t> pixels;
  int pixelsWidth = 0;
  int pixelsHeight = 0;
  // A blurred WebP at most 32 px on its long side and at most kLqipMaxBytes.
  Encoded lqip;
};

// The most bytes of the LQIP WebP: its data URI (base64) then stays under 1 KB.
inline constexpr size_t kLqipMaxBytes = 740;

// Summarises `decoded`: the whole image as stored (before orientation), in
// 8-bit sRGB, possibly shrunk on load (its scale is read from `header`'s
// size), of which `displayed` (a rectangle of the displayed image) is the
// picture. Reads every pixel of `decoded` once, under the deadline.
Summary Summarise(const vips::VImage& decoded, const Header& header, const Rect& displayed, Deadline& deadline);

}  // namespace iaas
