#include "save.h"

#include "errors.h"

namespace iaas {

using vips::VImage;

Encoded::~Encoded() {
  if (blob_ != nullptr) vips_area_unref(reinterpret_cast<VipsArea*>(blob_));
}

Encoded& Encoded::operator=(Encoded&& other) noexcept {
  if (this != &other) {
    if (blob_ != nullptr) vips_area_unref(reinterpret_cast<VipsArea*>(blob_));
    blob_ = other.blob_;
    other.blob_ = nullptr;
  }
  return *this;
}

const uint8_t* Encoded::data() const {
  return blob_ == nullptr ? nullptr : static_cast<const uint8_t*>(reinterpret_cast<VipsArea*>(blob_)->data);
}

size_t Encoded::size() const { return blob_ == nullptr ? 0 : reinterpret_cast<VipsArea*>(blob_)->length; }

int AutoQuality(OutFormat format, const Header& source, int sourceQuality) {
  int jpegQuality = sourceQuality >= 0 ? sourceQuality : (source.format == Format::Jpeg ? source.jpegQuality : 0);
  switch (format) {
    case OutFormat::Jpeg:
      return jpegQuality > 0 ? jpegQuality : 80;
    case OutFormat::Webp: return 80;
    case OutFormat::Avif: return 50;
    case OutFormat::Png:
    case OutFormat::Gif: return 0;
  }
  return 80;
}

namespace {

VipsBlob* Encode(const VImage& image, const EncodeSettings& settings) {
  int quality = settings.quality;
  switch (settings.format) {
    case OutFormat::Jpeg:
      if (settings.workingCopy) {
        return image.jpegsave_buffer(VImage::option()
                                         ->set("Q", quality)
                                         ->set("interlace", false)
                                         ->set("optimize_coding", true)
                                         ->set("subsample_mode", VIPS_FOREIGN_SUBSAMPLE_OFF)
                                         ->set("keep", VIPS_FOREIGN_KEEP_NONE));
      }
      return image.jpegsave_buffer(VImage::option()
                                       ->set("Q", quality)
                                       ->set("interlace", true)
                                       ->set("optimize_coding", true)
                                       ->set("keep", VIPS_FOREIGN_KEEP_NONE));
    case OutFormat::Png:
      if (settings.workingCopy) {
        return image.pngsave_buffer(VImage::option()
                                        ->set("compression", 1)
                                        ->set("filter", VIPS_FOREIGN_PNG_FILTER_NONE)
                                        ->set("keep", VIPS_FOREIGN_KEEP_NONE));
      }
      // sharp's defaults: zlib level 6, no adaptive filtering.
      return image.pngsave_buffer(VImage::option()
                                      ->set("compression", 6)
                                      ->set("filter", VIPS_FOREIGN_PNG_FILTER_NONE)
                                      ->set("keep", VIPS_FOREIGN_KEEP_NONE));
    case OutFormat::Webp:
      return image.webpsave_buffer(VImage::option()
                                       ->set("Q", quality)
                                       ->set("effort", 4)
                                       ->set("keep", VIPS_FOREIGN_KEEP_NONE));
    case OutFormat::Avif:
      return image.heifsave_buffer(VImage::option()
                                       ->set("Q", quality)
                                       ->set("compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1)
                                       ->set("effort", settings.avifEffort)
                                       ->set("bitdepth", 8)
                                       ->set("keep", VIPS_FOREIGN_KEEP_NONE));
    case OutFormat::Gif:
      // A palette per frame; frame delays and the loop count are read from the image (not metadata `keep` drops).
      return image.gifsave_buffer(VImage::option()->set("keep", VIPS_FOREIGN_KEEP_NONE));
  }
  throw Failure(Code::Internal, "Unknown output format");
}

}  // namespace

Encoded Save(const VImage& image, const EncodeSettings& settings, Deadline& deadline) {
  deadline.Check();
  deadline.Watch(image);
  try {
    return Encoded(Encode(image, settings));
  } catch (const vips::VError&) {
    deadline.ThrowIfFired();
    // The pipeline reads lazily, so a decoder's failure surfaces here too: the caller,
    // which knows the input, tells the two apart (see Encode in pipeline.cc).
    throw Failure(Code::EncodeFailed, "The image could not be encoded", TakeVipsError());
  }
}

}  // namespace iaas
