// The render and upload pipelines: lists of small steps over one image.
#pragma once

#include <array>

#include <optional>

#include "geometry.h"
#include "gravity.h"
#include "load.h"
#include "save.h"
#include "summary.h"

namespace iaas {

// Already validated by TypeScript; read as given.
struct RenderOptions {
  int width = 0;   // 0: not given
  int height = 0;  // 0: not given
  Fit fit = Fit::Clip;
  Gravity gravity = Gravity::Centre;  // where a `crop` box sits
  FocalPoint focus;                   // the original's, for Gravity::Focus
  int maxFrames = 1;                  // frames an animated WebP or GIF output keeps, at most
  OutFormat format = OutFormat::Jpeg;
  int quality = -1;  // -1: auto
  double blurSigma = 0;
  std::array<double, 3> background{255, 255, 255};
  int timeoutMs = 0;
  double maxInputPixels = 0;
  int maxPages = 0;
  int avifEffort = 0;
  // Rendering from a working copy: the original's displayed size (the geometry is
  // planned on it, so a copy renders to the pixel what the original would), and
  // what `auto` quality means for it (see AutoQuality). 0 and -1: the input's own.
  int sourceWidth = 0;
  int sourceHeight = 0;
  int sourceQuality = -1;
  // Encode as a working copy (see EncodeSettings) rather than for delivery.
  bool workingCopy = false;
};

struct RenderResult {
  Encoded data;
  OutFormat format;
  int width;
  int height;
};

// Decodes, fits, blurs and encodes `input`.
RenderResult Render(const Input& input, const RenderOptions& options);

using CropRect = Rect;

struct PrepareOptions {
  bool crop = false;
  CropRect rect;  // in oriented coordinates, already checked against the image
  double maxPixels = 0;
  double maxInputPixels = 0;
  int maxPages = 0;
  int timeoutMs = 0;
  // false: EXIF, XMP, IPTC and comments are removed (ICC kept), losslessly where the format allows.
  bool keepMetadata = false;
  // true: the result carries the summary of the stored picture (GET /{id}.json).
  bool summarise = false;
};

struct PrepareResult {
  bool changed = false;
  Encoded data;  // empty when unchanged: the caller keeps the input bytes
  Format format = Format::Unknown;
  int width = 0;
  int height = 0;
  int jpegQuality = -1;  // the upload's estimated JPEG quality, -1 when it is no JPEG
  int frames = 1;  // as the header declares
  std::optional<Summary> summary;
};

// Checks an upload decodes completely, then applies orientation, crop and the
// stored-pixel limit. Unchanged inputs are not re-encoded.
PrepareResult PrepareOriginal(const Input& input, const PrepareOptions& options);

struct SummaryOptions {
  double maxInputPixels = 0;
  int maxPages = 0;
  int timeoutMs = 0;
};

struct SummaryResult {
  int frames = 1;
  Summary summary;
};

// The summary of a stored original (one uploaded before summaries were kept).
SummaryResult SummariseOriginal(const Input& input, const SummaryOptions& options);

}  // namespace iaas
