// Animated sources (GIF, WebP): how many frames a render keeps, the kept
// frames as one strip, and the fitted frames joined again with their delays
// and loop count.
#pragma once

#include <vips/vips8>

#include <vector>

#include "load.h"
#include "vocabulary.h"

namespace iaas {

// The frames a render keeps: up to `maxFrames` of an animated source when the
// output animates (WebP, GIF); otherwise the first frame only.
int FramesKept(const Header& header, OutFormat format, int maxFrames);

// The first `frames` frames of `input`, stacked top to bottom in one strip,
// each `header.height` high; read sequentially.
vips::VImage OpenFrames(const Input& input, int frames);

// The frames of a strip, top to bottom, each `pageHeight` high.
std::vector<vips::VImage> SplitFrames(const vips::VImage& strip, int pageHeight, int frames);

// The fitted frames as one strip (all the same size), carrying the delays of
// the frames kept and the loop count of `source`, ready for Save.
vips::VImage JoinFrames(const std::vector<vips::VImage>& frames, const vips::VImage& source);

}  // namespace iaas
