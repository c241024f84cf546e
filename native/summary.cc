#include "summary.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "errors.h"

namespace iaas {

using vips::VImage;

namespace {

// The LQIP is made at this long side.
constexpr int kPlaceholderSide = 32;
// The BlurHash's pixels: its 4x4 components at most need no more, and its encoder's cost
// grows with the pixels (16x12 takes a quarter of 32x24's 4 ms).
constexpr int kHashSide = 16;
// Sigma of the LQIP's blur, in its own pixels: enough to hide the JPEG-like blocks of a tiny WebP.
constexpr double kLqipSigma = 1.2;
// WebP qualities tried in turn until the LQIP fits kLqipMaxBytes.
constexpr int kLqipQualities[] = {50, 30, 10};

struct GFree {
  void operator()(void* data) const { g_free(data); }
};

// The stored rectangle (before orientation) that displays as `rect` under EXIF orientation `o`
// of a stored image of `w` x `h`: display(x, y) = stored(map(x, y)), mapped at two corners.
Rect StoredRect(const Rect& rect, int o, int w, int h) {
  auto map = [&](int x, int y) -> std::array<int, 2> {
    switch (o) {
      case 2: return {w - 1 - x, y};
      case 3: return {w - 1 - x, h - 1 - y};
      case 4: return {x, h - 1 - y};
      case 5: return {y, x};
      case 6: return {y, h - 1 - x};
      case 7: return {w - 1 - y, h - 1 - x};
      case 8: return {w - 1 - y, x};
      default: return {x, y};
    }
  };
  auto a = map(rect.x, rect.y);
  auto b = map(rect.x + rect.width - 1, rect.y + rect.height - 1);
  int x0 = std::min(a[0], b[0]);
  int y0 = std::min(a[1], b[1]);
  return Rect{x0, y0, std::abs(a[0] - b[0]) + 1, std::abs(a[1] - b[1]) + 1};
}

// Downsizes (never enlarges) so the long side is at most `side`, alpha premultiplied meanwhile.
VImage FitWithin(const VImage& image, int side) {
  double scale = double(side) / std::max(image.width(), image.height());
  if (scale >= 1) return image;
  bool alpha = image.has_alpha();
  VImage working = alpha ? image.premultiply() : image;
  working = working.resize(scale, VImage::option()->set("kernel", VIPS_KERNEL_LINEAR));
  return alpha ? working.unpremultiply().cast(VIPS_FORMAT_UCHAR) : working.cast(VIPS_FORMAT_UCHAR);
}

// 8-bit RGB or RGBA: greyscale is widened, any other band count is trimmed.
VImage AsRgb(const VImage& image) {
  bool alpha = image.has_alpha();
  int colour = alpha ? image.bands() - 1 : image.bands();
  VImage rgb = colour >= 3 ? image.extract_band(0, VImage::option()->set("n", 3))
                           : image.extract_band(0).bandjoin({image.extract_band(0), image.extract_band(0)});
  if (alpha) rgb = rgb.bandjoin(image.extract_band(image.bands() - 1));
  return rgb.copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB)).cast(VIPS_FORMAT_UCHAR);
}

std::vector<uint8_t> PixelsOf(const VImage& image) {
  size_t size = 0;
  std::unique_ptr<void, GFree> memory(image.write_to_memory(&size));
  const auto* bytes = static_cast<const uint8_t*>(memory.get());
  return std::vector<uint8_t>(bytes, bytes + size);
}

// The fullest of 16x16x16 colour boxes (as sharp's `dominant`), reported as the mean of its
// pixels rather than the box's centre. Mostly transparent pixels do not count.
std::array<uint8_t, 3> Dominant(const VImage& rgb) {
  std::vector<uint8_t> pixels = PixelsOf(rgb);
  int bands = rgb.bands();
  std::vector<uint32_t> counts(4096, 0);
  std::vector<std::array<uint64_t, 3>> sums(4096, {0, 0, 0});
  std::array<uint64_t, 3> all{0, 0, 0};
  uint64_t seen = 0;
  for (size_t i = 0; i + bands <= pixels.size(); i += bands) {
    if (bands == 4 && pixels[i + 3] < 128) continue;
    int box = (pixels[i] >> 4) << 8 | (pixels[i + 1] >> 4) << 4 | (pixels[i + 2] >> 4);
    counts[box]++;
    for (int c = 0; c < 3; c++) {
      sums[box][c] += pixels[i + c];
      all[c] += pixels[i + c];
    }
    seen++;
  }
  std::array<uint8_t, 3> colour{255, 255, 255};
  if (seen == 0) return colour;
  int best = static_cast<int>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  for (int c = 0; c < 3; c++) colour[c] = static_cast<uint8_t>(std::lround(double(sums[best][c]) / counts[best]));
  return colour;
}

Encoded Lqip(const VImage& small) {
  bool alpha = small.has_alpha();
  VImage blurred = alpha ? small.premultiply() : small;
  blurred = blurred.gaussblur(kLqipSigma);
  blurred = (alpha ? blurred.unpremultiply() : blurred).cast(VIPS_FORMAT_UCHAR);
  Encoded encoded;
  for (int quality : kLqipQualities) {
    try {
      encoded = Encoded(blurred.webpsave_buffer(VImage::option()
                                                    ->set("Q", quality)
                                                    ->set("effort", 4)
                                                    ->set("smart_subsample", true)
                                                    ->set("keep", VIPS_FOREIGN_KEEP_NONE)));
    } catch (const vips::VError&) {
      // `small` is decoded already (in memory): this failure is the encoder's alone.
      throw Failure(Code::EncodeFailed, "The placeholder could not be encoded", TakeVipsError());
    }
    if (encoded.size() <= kLqipMaxBytes) return encoded;
  }
  // A 32 px WebP at quality 10 never comes near the limit; should one, it is halved.
  int side = std::max(small.width(), small.height());
  return side <= 4 ? std::move(encoded) : Lqip(FitWithin(small, side / 2));
}

}  // namespace

Summary Summarise(const VImage& decoded, const Header& header, const Rect& displayed, Deadline& deadline) {
  Rect stored = StoredRect(displayed, header.orientation, header.width, header.height);
  double sx = double(decoded.width()) / header.width;
  double sy = double(decoded.height()) / header.height;
  int left = std::min(decoded.width() - 1, static_cast<int>(std::floor(stored.x * sx)));
  int top = std::min(decoded.height() - 1, static_cast<int>(std::floor(stored.y * sy)));
  int width = std::max(1, std::min(decoded.width() - left, static_cast<int>(std::lround(stored.width * sx))));
  int height = std::max(1, std::min(decoded.height() - top, static_cast<int>(std::lround(stored.height * sy))));
  VImage picture = AsRgb(FitWithin(decoded.extract_area(left, top, width, height), kSummaryWorkingSide * 2));

  deadline.Check();
  deadline.Watch(picture);
  VImage working;
  try {
    working = picture.copy_memory();
  } catch (const vips::VError&) {
    deadline.ThrowIfFired();
    throw Failure(Code::CorruptImage, "The image could not be decoded", TakeVipsError());
  }
  if (header.orientation != 1) {
    working.set(VIPS_META_ORIENTATION, header.orientation);
    working = working.autorot();
  }

  Summary summary;
  summary.dominant = Dominant(working);
  VImage small = FitWithin(working, kPlaceholderSide);
  VImage hashed = FitWithin(small, kHashSide);
  VImage opaque = hashed.has_alpha()
                      ? hashed.flatten(VImage::option()->set("background", std::vector<double>{255, 255, 255}))
                            .cast(VIPS_FORMAT_UCHAR)
                      : hashed;
  summary.pixels = PixelsOf(opaque.bandjoin_const({255}).cast(VIPS_FORMAT_UCHAR));
  summary.pixelsWidth = opaque.width();
  summary.pixelsHeight = opaque.height();
  summary.lqip = Lqip(small);
  return summary;
}

}  // namespace iaas
