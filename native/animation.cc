#include "animation.h"

#include <algorithm>

#include "errors.h"

namespace iaas {

using vips::VImage;

int FramesKept(const Header& header, OutFormat format, int maxFrames) {
  bool animates = format == OutFormat::Webp || format == OutFormat::Gif;
  bool animated = header.format == Format::Gif || header.format == Format::Webp;
  if (!animates || !animated) return 1;
  return std::max(1, std::min(header.pages, maxFrames));
}

VImage OpenFrames(const Input& input, int frames) { return input.Open(true, 1, 1.0, frames); }

std::vector<VImage> SplitFrames(const VImage& strip, int pageHeight, int frames) {
  if (strip.height() != pageHeight * frames) {
    throw Failure(Code::CorruptImage, "The animation's frames do not stack to its height");
  }
  std::vector<VImage> split;
  split.reserve(frames);
  for (int i = 0; i < frames; i++) split.push_back(strip.extract_area(0, i * pageHeight, strip.width(), pageHeight));
  return split;
}

VImage JoinFrames(const std::vector<VImage>& frames, const VImage& source) {
  VImage strip = VImage::arrayjoin(frames, VImage::option()->set("across", 1)).copy();
  int frameHeight = frames.front().height();
  strip.set(VIPS_META_PAGE_HEIGHT, frameHeight);
  strip.set(VIPS_META_N_PAGES, static_cast<int>(frames.size()));
  if (source.get_typeof("delay") != 0) {
    std::vector<int> delays = source.get_array_int("delay");
    // The loader reports every frame's delay, kept or not.
    delays.resize(frames.size(), delays.empty() ? 100 : delays.back());
    strip.set("delay", delays);
  }
  if (source.get_typeof("loop") != 0) strip.set("loop", source.get_int("loop"));
  return strip;
}

}  // namespace iaas
