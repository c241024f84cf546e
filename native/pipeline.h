// The render and upload pipelines: lists of small steps over one image.
#pragma once

#include <array>

#include "geometry.h"
#include "load.h"
#include "save.h"

namespace iaas {

// Already validated by TypeScript; read as given.
struct RenderOptions {
  int width = 0;   // 0: not given
  int height = 0;  // 0: not given
  Fit fit = Fit::Clip;
  OutFormat format = OutFormat::Jpeg;
  int quality = -1;  // -1: auto
  double blurSigma = 0;
  std::array<double, 3> background{255, 255, 255};
  int timeoutMs = 0;
  double maxInputPixels = 0;
  int maxPages = 0;
  int avifEffort = 0;
};

struct RenderResult {
  Encoded data;
  OutFormat format;
  int width;
  int height;
};

// Decodes, fits, blurs and encodes `input`.
RenderResult Render(const Input& input, const RenderOptions& options);

struct CropRect {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

struct PrepareOptions {
  bool crop = false;
  CropRect rect;  // in oriented coordinates, already checked against the image
  double maxPixels = 0;
  double maxInputPixels = 0;
  int maxPages = 0;
  int timeoutMs = 0;
  // false: EXIF, XMP, IPTC and comments are removed (ICC kept), losslessly where the format allows.
  bool keepMetadata = false;
};

struct PrepareResult {
  bool changed = false;
  Encoded data;  // empty when unchanged: the caller keeps the input bytes
  Format format = Format::Unknown;
  int width = 0;
  int height = 0;
};

// Checks an upload decodes completely, then applies orientation, crop and the
// stored-pixel limit. Unchanged inputs are not re-encoded.
PrepareResult PrepareOriginal(const Input& input, const PrepareOptions& options);

}  // namespace iaas
