#include "pipeline.h"

#include <cmath>
#include <vector>

#include "animation.h"
#include "deadline.h"
#include "errors.h"
#include "strip.h"

namespace iaas {

using vips::VImage;

namespace {

// The state one render carries from step to step.
struct Work {
  const Input& input;
  const RenderOptions& options;
  Deadline& deadline;
  Header header;
  Plan plan;
  VImage image;
  bool premultiplied = false;
  // Where the crop box sits, once known: the frames of an animation share the first one's.
  std::optional<CropOffset> cropAt = std::nullopt;
};

bool SwapsAxes(int orientation) { return orientation >= 5; }

// Evaluates `image` into memory, under the deadline. Used where the next
// operation needs random access (rotation) in a sequential pipeline.
VImage Materialise(const VImage& image, Deadline& deadline) {
  deadline.Check();
  deadline.Watch(image);
  try {
    return image.copy_memory();
  } catch (const vips::VError&) {
    deadline.ThrowIfFired();
    throw Failure(Code::CorruptImage, "The image could not be decoded", TakeVipsError());
  }
}

// Reload with the decoder's own downscaling, leaving lanczos3 the rest
// (sharp's choice: JPEG DCT scaling by 2/4/8, WebP scaled decode).
void ShrinkOnLoad(Work& w) {
  int targetWidth = SwapsAxes(w.header.orientation) ? w.plan.resizeHeight : w.plan.resizeWidth;
  int targetHeight = SwapsAxes(w.header.orientation) ? w.plan.resizeWidth : w.plan.resizeHeight;
  double shrink = std::min(double(w.header.width) / targetWidth, double(w.header.height) / targetHeight);
  if (shrink < 2.0 || w.header.pages > 1) return;
  if (w.input.format() == Format::Jpeg) {
    // The largest DCT scale that leaves the image at least the target size. libjpeg
    // rounds partial blocks up (ceil(w / factor)), so the decode never falls short of it.
    int factor = shrink >= 8 ? 8 : shrink >= 4 ? 4 : 2;
    w.image = w.input.Open(true, factor);
  } else if (w.input.format() == Format::Webp) {
    w.image = w.input.Open(true, 1, 1.0 / shrink);
  }
}

// Work in 8-bit sRGB: embedded profiles and CMYK are converted, not ignored.
void ToSrgb(Work& w) {
  VImage& image = w.image;
  VipsInterpretation space = image.interpretation();
  bool hasProfile = image.get_typeof(VIPS_META_ICC_NAME) != 0;
  if (hasProfile || space == VIPS_INTERPRETATION_CMYK) {
    try {
      vips::VOption* options = VImage::option()->set("intent", VIPS_INTENT_PERCEPTUAL)->set("depth", 8);
      if (hasProfile) {
        options->set("embedded", true);
      } else {
        options->set("input_profile", "cmyk");
      }
      image = image.icc_transform("srgb", options);
    } catch (const vips::VError&) {
      // A broken embedded profile: fall back to the plain colourspace conversion.
      vips_error_clear();
      image = image.colourspace(VIPS_INTERPRETATION_sRGB);
    }
  } else if (space != VIPS_INTERPRETATION_sRGB || image.bands() < 3) {
    image = image.colourspace(VIPS_INTERPRETATION_sRGB);
  }
  if (image.format() != VIPS_FORMAT_UCHAR) image = image.cast(VIPS_FORMAT_UCHAR);
}

// Resampling and blurring straight alpha darkens edges; premultiply first.
void Premultiply(Work& w) {
  if (!w.image.has_alpha()) return;
  w.image = w.image.premultiply();
  w.premultiplied = true;
}

// lanczos3 from the (possibly pre-shrunk) decode to the planned size.
void Resize(Work& w) {
  bool swap = SwapsAxes(w.header.orientation);
  int targetWidth = swap ? w.plan.resizeHeight : w.plan.resizeWidth;
  int targetHeight = swap ? w.plan.resizeWidth : w.plan.resizeHeight;
  if (w.image.width() == targetWidth && w.image.height() == targetHeight) return;
  double hscale = double(targetWidth) / w.image.width();
  double vscale = double(targetHeight) / w.image.height();
  w.image = w.image.resize(hscale, VImage::option()->set("vscale", vscale)->set("kernel", VIPS_KERNEL_LANCZOS3));
  if (w.image.width() != targetWidth || w.image.height() != targetHeight) {
    throw Failure(Code::Internal, "Resize produced an unexpected size");
  }
}

// A slight Gaussian blur, after the resize so its radius is in output pixels.
void Blur(Work& w) {
  if (w.options.blurSigma <= 0) return;
  w.image = w.image.gaussblur(w.options.blurSigma);
}

void Unpremultiply(Work& w) {
  if (!w.premultiplied) return;
  w.image = w.image.unpremultiply().cast(VIPS_FORMAT_UCHAR);
  w.premultiplied = false;
}

// EXIF orientation, applied to the small resized image rather than the source.
void Orient(Work& w) {
  if (w.header.orientation == 1) return;
  VImage image = Materialise(w.image, w.deadline);
  image.set(VIPS_META_ORIENTATION, w.header.orientation);
  w.image = image.autorot();
}

// The displayed size of the original: given for a working copy, else the input's own.
int SourceWidth(const RenderOptions& options, const Header& header) {
  return options.sourceWidth > 0 ? options.sourceWidth : header.OrientedWidth();
}
int SourceHeight(const RenderOptions& options, const Header& header) {
  return options.sourceHeight > 0 ? options.sourceHeight : header.OrientedHeight();
}

// `crop`: place the box on the scaled image by the gravity (centred by default).
void Crop(Work& w) {
  if (!w.plan.crop) return;
  if (!w.cropAt && LooksAtPixels(w.options.gravity)) {
    // The smart crop reads the image many times: from memory, not from the decoder.
    w.image = Materialise(w.image, w.deadline);
    w.cropAt = SmartCropOffset(w.image, w.plan, w.options.gravity);
  } else if (!w.cropAt) {
    // The focus is in the original's pixels, also when the source is a working copy.
    w.cropAt = PlaceCrop(w.plan, w.options.gravity, w.options.focus, SourceWidth(w.options, w.header), SourceHeight(w.options, w.header));
  }
  w.image = w.image.extract_area(w.cropAt->left, w.cropAt->top, w.plan.outWidth, w.plan.outHeight);
}

// JPEG has no alpha: flatten onto the background.
void Flatten(Work& w) {
  if (w.options.format != OutFormat::Jpeg || !w.image.has_alpha()) return;
  const auto& bg = w.options.background;
  w.image = w.image.flatten(VImage::option()->set("background", std::vector<double>{bg[0], bg[1], bg[2]}));
  if (w.image.format() != VIPS_FORMAT_UCHAR) w.image = w.image.cast(VIPS_FORMAT_UCHAR);
}

// `canvas`: centre on the background; transparent when alpha survives.
void Canvas(Work& w) {
  if (!w.plan.canvas) return;
  const auto& bg = w.options.background;
  std::vector<double> background{bg[0], bg[1], bg[2]};
  if (w.image.has_alpha()) background.push_back(0);
  w.image = w.image.embed(w.plan.left, w.plan.top, w.plan.outWidth, w.plan.outHeight,
                          VImage::option()->set("extend", VIPS_EXTEND_BACKGROUND)->set("background", background));
}

// The steps that fit one frame, after it is decoded.
void FitFrame(Work& w) {
  ToSrgb(w);
  Premultiply(w);
  Resize(w);
  Blur(w);
  Unpremultiply(w);
  Orient(w);
  Crop(w);
  Flatten(w);
  Canvas(w);
}

// An animation kept as one: each frame fitted the same way, then joined with its delays.
void Animate(Work& w, int frames) {
  if (frames <= 1) return FitFrame(w);
  VImage strip = OpenFrames(w.input, frames);
  std::vector<VImage> fitted;
  for (const VImage& frame : SplitFrames(strip, w.header.height, frames)) {
    Work f{w.input, w.options, w.deadline, w.header, w.plan, frame};
    f.cropAt = w.cropAt;
    FitFrame(f);
    w.cropAt = f.cropAt;
    fitted.push_back(f.image);
  }
  w.image = JoinFrames(fitted, strip);
}

}  // namespace

RenderResult Render(const Input& input, const RenderOptions& options) {
  Deadline deadline(options.timeoutMs);
  VImage image = input.Open(true);
  Header header = HeaderOf(input, image);
  int frames = FramesKept(header, options.format, options.maxFrames);
  CheckPixels(header, options.maxInputPixels, options.maxPages, frames);
  // A working copy is planned on the original's size: the output matches it to the pixel.
  Work w{input, options, deadline, header,
         PlanGeometry(SourceWidth(options, header), SourceHeight(options, header), options.width, options.height, options.fit),
         image};

  ShrinkOnLoad(w);
  Animate(w, frames);

  int quality = options.quality >= 0 ? options.quality : AutoQuality(options.format, header, options.sourceQuality);
  Encoded data = Save(w.image, EncodeSettings{options.format, quality, options.avifEffort, options.workingCopy}, deadline);
  int height = frames > 1 ? w.image.height() / frames : w.image.height();
  return RenderResult{std::move(data), options.format, w.image.width(), height};
}

namespace {

// Decodes every pixel once, so a truncated or corrupt upload is refused now
// rather than on its first render. JPEG decodes at 1/8: the entropy data is
// still read in full, which is where truncation shows.
void VerifyDecodes(const Input& input, Deadline& deadline) {
  VImage image = input.Open(true, input.format() == Format::Jpeg ? 8 : 1);
  deadline.Watch(image);
  try {
    image.avg();
  } catch (const vips::VError&) {
    deadline.ThrowIfFired();
    throw Failure(Code::CorruptImage, "The image could not be decoded", TakeVipsError());
  }
}

OutFormat StoredFormat(Format format) {
  switch (format) {
    case Format::Jpeg: return OutFormat::Jpeg;
    case Format::Webp: return OutFormat::Webp;
    case Format::Avif: return OutFormat::Avif;
    default: return OutFormat::Png;
  }
}

Format ToFormat(OutFormat format) {
  switch (format) {
    case OutFormat::Jpeg: return Format::Jpeg;
    case OutFormat::Webp: return Format::Webp;
    case OutFormat::Avif: return Format::Avif;
    case OutFormat::Png: return Format::Png;
    case OutFormat::Gif: return Format::Gif;
  }
  return Format::Png;
}

// Formats whose metadata cannot be removed without re-encoding: it is re-encoded when
// it carries EXIF, XMP or IPTC. (GIF keeps its comments: re-encoding would lose frames.)
bool CarriesMetadataToReencode(const Input& input) {
  if (input.format() != Format::Tiff && input.format() != Format::Avif) return false;
  VImage image = input.Open(true);
  for (const char* field : {VIPS_META_EXIF_NAME, VIPS_META_XMP_NAME, VIPS_META_IPTC_NAME}) {
    if (image.get_typeof(field) != 0) return true;
  }
  return false;
}

// Originals are re-encoded rarely and kept long: spend effort on their size.
constexpr int kStoredAvifEffort = 4;

// Originals are re-encoded rarely and kept long: use a generous quality.
int StoredQuality(OutFormat format, const Header& header) {
  switch (format) {
    case OutFormat::Jpeg: return header.jpegQuality > 0 ? header.jpegQuality : 90;
    case OutFormat::Webp: return 90;
    case OutFormat::Avif: return 70;
    case OutFormat::Png:
    case OutFormat::Gif: return 0;
  }
  return 90;
}

// The placeholders' pipeline: the picture shrunk on load to about kSummaryWorkingSide (on
// the shorter side of `displayed`), in sRGB, then summarised.
Summary SummaryOf(const Input& input, const Header& header, const Rect& displayed, Deadline& deadline) {
  double scale = std::min(1.0, double(kSummaryWorkingSide) / std::min(displayed.width, displayed.height));
  Plan plan{};
  plan.resizeWidth = std::max(1, static_cast<int>(std::lround(header.OrientedWidth() * scale)));
  plan.resizeHeight = std::max(1, static_cast<int>(std::lround(header.OrientedHeight() * scale)));
  RenderOptions unused;
  Work w{input, unused, deadline, header, plan, input.Open(true)};
  ShrinkOnLoad(w);
  ToSrgb(w);
  return Summarise(w.image, header, displayed, deadline);
}

}  // namespace

PrepareResult PrepareOriginal(const Input& input, const PrepareOptions& options) {
  Deadline deadline(options.timeoutMs);
  Header header = ReadHeader(input);
  CheckPixels(header, options.maxInputPixels, options.maxPages);
  // The summary of the whole picture reads every pixel too: then the image is decoded once, not twice.
  bool summaryVerifies = options.summarise && !options.crop;
  if (!summaryVerifies) VerifyDecodes(input, deadline);

  PrepareResult result;
  result.format = input.format();
  result.jpegQuality = header.jpegQuality;
  result.frames = header.pages;
  if (options.summarise) {
    Rect whole{0, 0, header.OrientedWidth(), header.OrientedHeight()};
    result.summary = SummaryOf(input, header, options.crop ? options.rect : whole, deadline);
  }
  int width = options.crop ? options.rect.width : header.OrientedWidth();
  int height = options.crop ? options.rect.height : header.OrientedHeight();
  bool tooLarge = options.maxPixels > 0 && double(width) * height > options.maxPixels;
  bool reencode = header.orientation != 1 || options.crop || tooLarge ||
                  (!options.keepMetadata && CarriesMetadataToReencode(input));
  if (!reencode) {
    result.width = width;
    result.height = height;
    // Kept as uploaded, minus what only the uploader should see (GPS position, camera serial).
    if (!options.keepMetadata) {
      std::vector<uint8_t> stripped = StripMetadata(input.format(), input.data(), input.length());
      if (!stripped.empty()) {
        result.changed = true;
        result.data = Encoded(vips_blob_copy(stripped.data(), stripped.size()));
      }
    }
    return result;
  }
  result.changed = true;

  VImage image = input.Open(false);
  RenderOptions unused;
  Work w{input, unused, deadline, header, Plan{}, image};
  ToSrgb(w);
  image = w.image;
  if (header.orientation != 1) {
    image.set(VIPS_META_ORIENTATION, header.orientation);
    image = image.autorot();
  }
  if (options.crop) {
    image = image.extract_area(options.rect.x, options.rect.y, options.rect.width, options.rect.height);
  }
  if (tooLarge) {
    double scale = std::sqrt(options.maxPixels / (double(width) * height));
    int targetWidth = std::max(1, static_cast<int>(std::floor(width * scale)));
    int targetHeight = std::max(1, static_cast<int>(std::floor(height * scale)));
    bool alpha = image.has_alpha();
    if (alpha) image = image.premultiply();
    image = image.resize(double(targetWidth) / image.width(),
                         VImage::option()
                             ->set("vscale", double(targetHeight) / image.height())
                             ->set("kernel", VIPS_KERNEL_LANCZOS3));
    if (alpha) image = image.unpremultiply().cast(VIPS_FORMAT_UCHAR);
  }
  OutFormat format = StoredFormat(input.format());
  result.data = Save(image, EncodeSettings{format, StoredQuality(format, header), kStoredAvifEffort}, deadline);
  result.format = ToFormat(format);
  result.width = image.width();
  result.height = image.height();
  return result;
}

}  // namespace iaas

namespace iaas {

SummaryResult SummariseOriginal(const Input& input, const SummaryOptions& options) {
  Deadline deadline(options.timeoutMs);
  Header header = ReadHeader(input);
  CheckPixels(header, options.maxInputPixels, options.maxPages, 1);
  Rect whole{0, 0, header.OrientedWidth(), header.OrientedHeight()};
  return SummaryResult{header.pages, SummaryOf(input, header, whole, deadline)};
}

}  // namespace iaas
