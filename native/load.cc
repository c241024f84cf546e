#include "load.h"

#include <algorithm>
#include <string>

#include "errors.h"
#include "quality.h"

namespace iaas {

using vips::VImage;

Input::Input(const uint8_t* data, size_t length)
    : data_(data), length_(length), format_(Sniff(data, length)), blob_(nullptr) {
  if (format_ == Format::Unknown) {
    throw Failure(Code::UnsupportedFormat,
                  "The input is not a JPEG, PNG, WebP, GIF, AVIF or TIFF image");
  }
  blob_ = vips_blob_new(nullptr, data, length);
}

Input::~Input() {
  if (blob_ != nullptr) vips_area_unref(reinterpret_cast<VipsArea*>(blob_));
}

VImage Input::Open(bool sequential, int shrink, double scale, int pages) const {
  vips::VOption* options = VImage::option()
                               ->set("access", sequential ? VIPS_ACCESS_SEQUENTIAL : VIPS_ACCESS_RANDOM)
                               // A truncated file otherwise decodes with only a warning.
                               ->set("fail_on", VIPS_FAIL_ON_WARNING);
  try {
    switch (format_) {
      case Format::Jpeg:
        if (shrink > 1) options->set("shrink", shrink);
        return VImage::jpegload_buffer(blob_, options);
      case Format::Png:
        return VImage::pngload_buffer(blob_, options);
      case Format::Gif:
        if (pages > 1) options->set("n", pages);
        return VImage::gifload_buffer(blob_, options);
      case Format::Webp:
        if (scale != 1.0) options->set("scale", scale);
        if (pages > 1) options->set("n", pages);
        return VImage::webpload_buffer(blob_, options);
      case Format::Avif:
        return VImage::heifload_buffer(blob_, options);
      case Format::Tiff:
        return VImage::tiffload_buffer(blob_, options);
      case Format::Unknown:
        break;
    }
  } catch (const vips::VError& error) {
    throw Failure(Code::CorruptImage, "The image header could not be read", TakeVipsError());
  }
  delete options;
  throw Failure(Code::UnsupportedFormat, "Unsupported input format");
}

Header ReadHeader(const Input& input) { return HeaderOf(input, input.Open(true)); }

Header HeaderOf(const Input& input, const VImage& image) {
  Header header;
  header.format = input.format();
  header.width = image.width();
  // The raw count: vips_image_get_n_pages() reports 1 for 10,000 pages or more, which would
  // let such a file past the limits. Only the first page is loaded, so its height is one page's.
  int pages = 1;
  if (vips_image_get_typeof(image.get_image(), VIPS_META_N_PAGES) != 0 &&
      vips_image_get_int(image.get_image(), VIPS_META_N_PAGES, &pages) == 0 && pages > 1) {
    header.pages = pages;
  }
  header.height = image.height();
  header.orientation = vips_image_get_orientation(image.get_image());
  if (header.orientation < 1 || header.orientation > 8) header.orientation = 1;
  header.hasAlpha = image.has_alpha();
  int interlaced = 0;
  header.interlaced = vips_image_get_typeof(image.get_image(), "interlaced") != 0 &&
                      vips_image_get_int(image.get_image(), "interlaced", &interlaced) == 0 && interlaced != 0;
  if (input.format() == Format::Jpeg) header.jpegQuality = EstimateJpegQuality(input.data(), input.length());
  if (header.width <= 0 || header.height <= 0) {
    throw Failure(Code::CorruptImage, "The image header declares no pixels");
  }
  return header;
}

void CheckPixels(const Header& header, double maxPixels, int maxPages, int frames) {
  if (maxPages > 0 && header.pages > maxPages) {
    throw Failure(Code::TooManyPixels, "The image declares " + std::to_string(header.pages) +
                                           " pages or frames, more than the limit of " + std::to_string(maxPages));
  }
  int counted = frames > 0 ? std::min(header.pages, frames) : header.pages;
  if (maxPixels > 0 && double(header.width) * double(header.height) * counted > maxPixels) {
    throw Failure(Code::TooManyPixels,
                  "The image declares " + std::to_string(header.width) + "x" + std::to_string(header.height) +
                      (counted > 1 ? " x " + std::to_string(counted) + " pages" : std::string()) +
                      ", more pixels than the limit of " + std::to_string(static_cast<long long>(maxPixels)));
  }
}

}  // namespace iaas
