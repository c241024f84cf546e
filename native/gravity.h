// Where a `crop` box sits in the fitted image: by a compass point, by libvips'
// smart crop (attention, entropy), or around the original's focal point.
#pragma once

#include <vips/vips8>

#include "geometry.h"
#include "vocabulary.h"

namespace iaas {

// A point in the source's displayed pixels (after EXIF orientation); absent when negative.
struct FocalPoint {
  double x = -1;
  double y = -1;
  bool Given() const { return x >= 0 && y >= 0; }
};

// The top left corner of the crop box in the resized image.
struct CropOffset {
  int left = 0;
  int top = 0;
};

// True for the gravities that look at the pixels (libvips' smart crop).
bool LooksAtPixels(Gravity gravity);

// The box's offset for a gravity that does not look at the pixels: `centre` is
// the plan's own (centred) offset, a compass point keeps its edge or corner, and
// `focus` keeps the focal point (in the source's `sourceWidth` x `sourceHeight`
// displayed pixels) as near the box's centre as the image allows. `focus`
// without a focal point is `centre`.
CropOffset PlaceCrop(const Plan& plan, Gravity gravity, FocalPoint focus, int sourceWidth, int sourceHeight);

// `attention` or `entropy`: libvips' smart crop, run on `fitted` (the resized,
// oriented image, already in memory: the search reads it many times).
CropOffset SmartCropOffset(const vips::VImage& fitted, const Plan& plan, Gravity gravity);

}  // namespace iaas
