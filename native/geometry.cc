#include "geometry.h"

#include <algorithm>
#include <cmath>

namespace iaas {

namespace {

int Round(double value) { return std::max(1, static_cast<int>(std::lround(value))); }

}  // namespace

Plan PlanGeometry(int width, int height, int boxWidth, int boxHeight, Fit fit) {
  Plan plan{width, height, width, height, 0, 0, false, false};
  if (boxWidth <= 0 && boxHeight <= 0) return plan;

  // One side given: the other follows the aspect ratio, whatever the fit.
  if (boxHeight <= 0) {
    plan.resizeWidth = boxWidth;
    plan.resizeHeight = Round(double(height) * boxWidth / width);
  } else if (boxWidth <= 0) {
    plan.resizeWidth = Round(double(width) * boxHeight / height);
    plan.resizeHeight = boxHeight;
  } else {
    double scaleX = double(boxWidth) / width;
    double scaleY = double(boxHeight) / height;
    bool fitInside = fit == Fit::Clip || fit == Fit::Canvas;
    // The side that decides the scale lands exactly on the box.
    bool widthDecides = fitInside ? scaleX <= scaleY : scaleX >= scaleY;
    if (widthDecides) {
      plan.resizeWidth = boxWidth;
      plan.resizeHeight = Round(height * scaleX);
      plan.resizeHeight = fitInside ? std::min(plan.resizeHeight, boxHeight) : std::max(plan.resizeHeight, boxHeight);
    } else {
      plan.resizeHeight = boxHeight;
      plan.resizeWidth = Round(width * scaleY);
      plan.resizeWidth = fitInside ? std::min(plan.resizeWidth, boxWidth) : std::max(plan.resizeWidth, boxWidth);
    }
    if (fit == Fit::Crop) {
      plan.crop = plan.resizeWidth != boxWidth || plan.resizeHeight != boxHeight;
      plan.left = (plan.resizeWidth - boxWidth) / 2;
      plan.top = (plan.resizeHeight - boxHeight) / 2;
    } else if (fit == Fit::Canvas) {
      plan.canvas = plan.resizeWidth != boxWidth || plan.resizeHeight != boxHeight;
      plan.left = (boxWidth - plan.resizeWidth) / 2;
      plan.top = (boxHeight - plan.resizeHeight) / 2;
    }
    if (fit == Fit::Crop || fit == Fit::Canvas) {
      plan.outWidth = boxWidth;
      plan.outHeight = boxHeight;
      return plan;
    }
  }
  plan.outWidth = plan.resizeWidth;
  plan.outHeight = plan.resizeHeight;
  return plan;
}

}  // namespace iaas
