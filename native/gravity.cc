#include "gravity.h"

#include <algorithm>
#include <cmath>

#include "errors.h"

namespace iaas {

using vips::VImage;

namespace {

int Clamp(double value, int high) { return std::max(0, std::min(high, static_cast<int>(std::lround(value)))); }

// The offset that puts `centre` (in resized pixels) at the box's centre, kept inside the image.
int Around(double centre, int box, int resized) { return Clamp(centre - box / 2.0, resized - box); }

}  // namespace

bool LooksAtPixels(Gravity gravity) { return gravity == Gravity::Attention || gravity == Gravity::Entropy; }

CropOffset PlaceCrop(const Plan& plan, Gravity gravity, FocalPoint focus, int sourceWidth, int sourceHeight) {
  const int right = plan.resizeWidth - plan.outWidth;
  const int bottom = plan.resizeHeight - plan.outHeight;
  CropOffset at{plan.left, plan.top};
  switch (gravity) {
    case Gravity::North: at.top = 0; break;
    case Gravity::South: at.top = bottom; break;
    case Gravity::East: at.left = right; break;
    case Gravity::West: at.left = 0; break;
    case Gravity::Northeast: at = {right, 0}; break;
    case Gravity::Northwest: at = {0, 0}; break;
    case Gravity::Southeast: at = {right, bottom}; break;
    case Gravity::Southwest: at = {0, bottom}; break;
    case Gravity::Focus:
      if (!focus.Given()) break;
      // The centre of the focal pixel, scaled into the resized image.
      at.left = Around((focus.x + 0.5) * plan.resizeWidth / sourceWidth, plan.outWidth, plan.resizeWidth);
      at.top = Around((focus.y + 0.5) * plan.resizeHeight / sourceHeight, plan.outHeight, plan.resizeHeight);
      break;
    case Gravity::Centre:
    case Gravity::Attention:
    case Gravity::Entropy:
      break;
  }
  return at;
}

CropOffset SmartCropOffset(const VImage& fitted, const Plan& plan, Gravity gravity) {
  VipsInteresting interesting = gravity == Gravity::Attention ? VIPS_INTERESTING_ATTENTION : VIPS_INTERESTING_ENTROPY;
  vips_error_clear();
  try {
    // extract_area, which smartcrop ends with, records the box's corner as a negative offset
    // from the input's own: the input's is zeroed first.
    VImage source = fitted.copy(VImage::option()->set("xoffset", 0)->set("yoffset", 0));
    VImage cropped = source.smartcrop(plan.outWidth, plan.outHeight, VImage::option()->set("interesting", interesting));
    return CropOffset{Clamp(-cropped.xoffset(), plan.resizeWidth - plan.outWidth),
                      Clamp(-cropped.yoffset(), plan.resizeHeight - plan.outHeight)};
  } catch (const vips::VError&) {
    throw Failure(Code::CorruptImage, "The smart crop failed", TakeVipsError());
  }
}

}  // namespace iaas
