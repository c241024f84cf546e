#include "pipeline.h"

#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "animation.h"
#include "deadline.h"
#include "errors.h"
#include "strip.h"

namespace iaas {

using vips::VImage;

namespace {

// What one pipeline asks of the steps it shares: each step reads here whether it is
// enabled and how, so the render and the upload build their own and reuse the steps.
struct StepConfig {
  // Read once top to bottom: a step that needs random access (rotation, the smart crop)
  // copies the image into memory first.
  bool sequential = true;
  // Alpha is premultiplied around the resize and blur: always in a render (its outputs
  // have always been made so, also at their own size), in an upload only when it is
  // downscaled (otherwise its pixels stay exactly as decoded).
  bool premultiply = false;
  double blurSigma = 0;  // 0: no blur
  // Where a `crop` box sits when the plan leaves it to the pipeline.
  Gravity gravity = Gravity::Centre;
  FocalPoint focus;  // in the original's displayed pixels
  // The original's displayed size, that the focus is in (a working copy's differs from its own).
  int sourceWidth = 0;
  int sourceHeight = 0;
  // The output has no alpha (JPEG): flattened onto the background.
  bool flatten = false;
  std::array<double, 3> background{255, 255, 255};
};

// The state one pipeline carries from step to step.
struct Work {
  const Input& input;
  const StepConfig& config;
  Deadline& deadline;
  Header header;
  Plan plan;
  VImage image;
  int frames = 1;  // frames kept of an animation: more than one are fitted one by one
  bool premultiplied = false;
  bool oriented = false;  // the EXIF orientation is applied: sizes are in displayed axes
  // Where the crop box sits, once known: the frames of an animation share the first one's.
  std::optional<CropOffset> cropAt = std::nullopt;
};

using Step = void (*)(Work&);

template <std::size_t N>
void Run(const std::array<Step, N>& steps, Work& w) {
  for (Step step : steps) step(w);
}

bool SwapsAxes(int orientation) { return orientation >= 5; }

// The planned resize in the image's current axes: stored ones until it is oriented.
std::pair<int, int> ResizeTarget(const Work& w) {
  bool swap = !w.oriented && SwapsAxes(w.header.orientation);
  return swap ? std::pair{w.plan.resizeHeight, w.plan.resizeWidth} : std::pair{w.plan.resizeWidth, w.plan.resizeHeight};
}

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
  auto [targetWidth, targetHeight] = ResizeTarget(w);
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
  if (!w.config.premultiply || !w.image.has_alpha()) return;
  w.image = w.image.premultiply();
  w.premultiplied = true;
}

// lanczos3 from the (possibly pre-shrunk) decode to the planned size.
void Resize(Work& w) {
  auto [targetWidth, targetHeight] = ResizeTarget(w);
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
  if (w.config.blurSigma <= 0) return;
  w.image = w.image.gaussblur(w.config.blurSigma);
}

void Unpremultiply(Work& w) {
  if (!w.premultiplied) return;
  w.image = w.image.unpremultiply().cast(VIPS_FORMAT_UCHAR);
  w.premultiplied = false;
}

// EXIF orientation: a render applies it to the small resized image rather than the source.
void Orient(Work& w) {
  if (w.oriented || w.header.orientation == 1) return;
  VImage image = w.config.sequential ? Materialise(w.image, w.deadline) : w.image;
  image.set(VIPS_META_ORIENTATION, w.header.orientation);
  w.image = image.autorot();
  w.oriented = true;
}

// `crop`: place the box on the image by the gravity (centred by default), unless it is placed already.
void Crop(Work& w) {
  if (!w.plan.crop) return;
  if (!w.cropAt && LooksAtPixels(w.config.gravity)) {
    // The smart crop reads the image many times: from memory, not from the decoder.
    w.image = Materialise(w.image, w.deadline);
    w.cropAt = SmartCropOffset(w.image, w.plan, w.config.gravity);
  } else if (!w.cropAt) {
    // The focus is in the original's pixels, also when the source is a working copy.
    w.cropAt = PlaceCrop(w.plan, w.config.gravity, w.config.focus, w.config.sourceWidth, w.config.sourceHeight);
  }
  w.image = w.image.extract_area(w.cropAt->left, w.cropAt->top, w.plan.outWidth, w.plan.outHeight);
}

// JPEG has no alpha: flatten onto the background.
void Flatten(Work& w) {
  if (!w.config.flatten || !w.image.has_alpha()) return;
  const auto& bg = w.config.background;
  w.image = w.image.flatten(VImage::option()->set("background", std::vector<double>{bg[0], bg[1], bg[2]}));
  if (w.image.format() != VIPS_FORMAT_UCHAR) w.image = w.image.cast(VIPS_FORMAT_UCHAR);
}

// `canvas`: centre on the background; transparent when alpha survives.
void Canvas(Work& w) {
  if (!w.plan.canvas) return;
  const auto& bg = w.config.background;
  std::vector<double> background{bg[0], bg[1], bg[2]};
  if (w.image.has_alpha()) background.push_back(0);
  w.image = w.image.embed(w.plan.left, w.plan.top, w.plan.outWidth, w.plan.outHeight,
                          VImage::option()->set("extend", VIPS_EXTEND_BACKGROUND)->set("background", background));
}

// One frame of a render, after it is decoded: fitted small first, then oriented and boxed.
constexpr std::array<Step, 9> kFitFrame{ToSrgb, Premultiply, Resize, Blur, Unpremultiply, Orient, Crop, Flatten, Canvas};

// An animation kept as one: each frame fitted the same way, then joined with its delays.
void FitFrames(Work& w) {
  if (w.frames <= 1) return Run(kFitFrame, w);
  VImage strip = OpenFrames(w.input, w.frames);
  std::vector<VImage> fitted;
  for (const VImage& frame : SplitFrames(strip, w.header.height, w.frames)) {
    Work f = w;
    f.image = frame;
    Run(kFitFrame, f);
    w.cropAt = f.cropAt;
    fitted.push_back(f.image);
  }
  w.image = JoinFrames(fitted, strip);
}

// A render: decoded as small as the plan allows, then fitted frame by frame.
constexpr std::array<Step, 2> kRender{ShrinkOnLoad, FitFrames};

// An upload made ready to store: its crop is in displayed coordinates, so it is oriented
// first, cropped, and only then downscaled to the stored-pixel limit.
constexpr std::array<Step, 6> kStoreOriginal{ToSrgb, Orient, Crop, Premultiply, Resize, Unpremultiply};

// The placeholders' decode: shrunk on load to the plan's size, in sRGB.
constexpr std::array<Step, 2> kSummaryDecode{ShrinkOnLoad, ToSrgb};

// Decodes every pixel of the first `pages` frames once, so a truncated or corrupt upload
// is refused now rather than on its first render. JPEG decodes at 1/8: the entropy data
// is still read in full, which is where truncation shows.
void VerifyDecodes(const Input& input, Deadline& deadline, int pages = 1) {
  VImage image = input.Open(true, input.format() == Format::Jpeg ? 8 : 1, 1.0, pages);
  deadline.Watch(image);
  try {
    image.avg();
  } catch (const vips::VError&) {
    deadline.ThrowIfFired();
    throw Failure(Code::CorruptImage, "The image could not be decoded", TakeVipsError());
  }
}

// Encodes the pipeline's image. The pipeline reads lazily, so the encoder drives the
// decoder and a failure there is as often the input's as the encoder's: the input is then
// decoded again on its own. One that does not decode is CORRUPT_IMAGE; one that does
// leaves ENCODE_FAILED, the service's failure. Only the failure path pays the decode.
Encoded Encode(Work& w, const EncodeSettings& settings) {
  try {
    return Save(w.image, settings, w.deadline);
  } catch (const Failure& failure) {
    if (failure.code() != Code::EncodeFailed) throw;
    VerifyDecodes(w.input, w.deadline, w.frames);
    throw;
  }
}

// What a render asks of the steps. The displayed size is the original's: given for a
// working copy, else the input's own.
StepConfig RenderConfig(const RenderOptions& options, const Header& header) {
  StepConfig config;
  config.sequential = true;
  config.premultiply = true;
  config.blurSigma = options.blurSigma;
  config.gravity = options.gravity;
  config.focus = options.focus;
  config.sourceWidth = options.sourceWidth > 0 ? options.sourceWidth : header.OrientedWidth();
  config.sourceHeight = options.sourceHeight > 0 ? options.sourceHeight : header.OrientedHeight();
  config.flatten = options.format == OutFormat::Jpeg;
  config.background = options.background;
  return config;
}

}  // namespace

RenderResult Render(const Input& input, const RenderOptions& options) {
  Deadline deadline(options.timeoutMs);
  VImage image = input.Open(true);
  Header header = HeaderOf(input, image);
  int frames = FramesKept(header, options.format, options.maxFrames);
  CheckPixels(header, options.maxInputPixels, options.maxPages, frames);
  StepConfig config = RenderConfig(options, header);
  // A working copy is planned on the original's size: the output matches it to the pixel.
  Work w{input, config, deadline, header,
         PlanGeometry(config.sourceWidth, config.sourceHeight, options.width, options.height, options.fit), image};
  w.frames = frames;
  Run(kRender, w);

  int quality = options.quality >= 0 ? options.quality : AutoQuality(options.format, header, options.sourceQuality);
  Encoded data = Encode(w, EncodeSettings{options.format, quality, options.avifEffort, options.workingCopy});
  int height = frames > 1 ? w.image.height() / frames : w.image.height();
  return RenderResult{std::move(data), options.format, w.image.width(), height};
}

namespace {

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
  StepConfig config;
  Work w{input, config, deadline, header, plan, input.Open(true)};
  Run(kSummaryDecode, w);
  return Summarise(w.image, header, displayed, deadline);
}

// The picture (after its crop) has more pixels than an original may keep: it is downscaled.
bool OverPixelLimit(const Plan& plan, const PrepareOptions& options) {
  return options.maxPixels > 0 && double(plan.outWidth) * plan.outHeight > options.maxPixels;
}

// The stored picture's sizes: the crop box (in displayed coordinates) is the plan's out
// size, and the resize after it is to at most `maxPixels`, aspect kept.
Plan StoredPlan(const Header& header, const PrepareOptions& options) {
  Plan plan{};
  plan.crop = options.crop;
  plan.outWidth = options.crop ? options.rect.width : header.OrientedWidth();
  plan.outHeight = options.crop ? options.rect.height : header.OrientedHeight();
  plan.resizeWidth = plan.outWidth;
  plan.resizeHeight = plan.outHeight;
  if (OverPixelLimit(plan, options)) {
    double scale = std::sqrt(options.maxPixels / (double(plan.outWidth) * plan.outHeight));
    plan.resizeWidth = std::max(1, static_cast<int>(std::floor(plan.outWidth * scale)));
    plan.resizeHeight = std::max(1, static_cast<int>(std::floor(plan.outHeight * scale)));
  }
  return plan;
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
  Plan plan = StoredPlan(header, options);
  bool reencode = header.orientation != 1 || options.crop || OverPixelLimit(plan, options) ||
                  (!options.keepMetadata && CarriesMetadataToReencode(input));
  if (!reencode) {
    result.width = plan.outWidth;
    result.height = plan.outHeight;
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

  // Decoded whole and at random: rotation needs no copy in memory.
  StepConfig config;
  config.sequential = false;
  config.premultiply = OverPixelLimit(plan, options);
  Work w{input, config, deadline, header, plan, input.Open(false)};
  // The crop box is given, not placed by a gravity.
  if (options.crop) w.cropAt = CropOffset{options.rect.x, options.rect.y};
  Run(kStoreOriginal, w);

  OutFormat format = StoredFormat(input.format());
  result.data = Encode(w, EncodeSettings{format, StoredQuality(format, header), kStoredAvifEffort});
  result.format = ToFormat(format);
  result.width = w.image.width();
  result.height = w.image.height();
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
