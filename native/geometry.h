// The fit modes: how a source of w×h maps into a requested box of W×H.
#pragma once

#include "vocabulary.h"

namespace iaas {


// Sizes in the oriented space (as a browser displays the image).
struct Plan {
  int resizeWidth;   // after the resize step
  int resizeHeight;
  int outWidth;      // after crop or canvas
  int outHeight;
  int left;          // crop offset into the resized image, or canvas offset of it
  int top;
  bool crop;
  bool canvas;
};

// `boxWidth`/`boxHeight` of 0 mean "not given". Sizes round to the nearest
// integer and are never 0.
Plan PlanGeometry(int width, int height, int boxWidth, int boxHeight, Fit fit);

}  // namespace iaas
