#include "testing.h"

#include <vips/vips8>

#include <cstring>
#include <string>
#include <vector>

#include "js_errors.h"
#include "load.h"
#include "options.h"

namespace iaas {

using vips::VImage;

namespace {

// Frees a buffer that libvips allocated with g_malloc.
struct GFree {
  void operator()(void* data) const { g_free(data); }
};

Napi::ArrayBuffer CopyOut(Napi::Env env, const void* data, size_t size) {
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, size);
  if (size > 0) std::memcpy(buffer.Data(), data, size);
  return buffer;
}

VipsBlob* SaveAs(const VImage& image, const std::string& format, int quality, bool keepExif, bool keepIcc) {
  int keep = (keepExif ? VIPS_FOREIGN_KEEP_EXIF : VIPS_FOREIGN_KEEP_NONE) | (keepIcc ? VIPS_FOREIGN_KEEP_ICC : VIPS_FOREIGN_KEEP_NONE);
  if (format == "png") return image.pngsave_buffer(VImage::option()->set("keep", keep));
  if (format == "webp") return image.webpsave_buffer(VImage::option()->set("Q", quality)->set("keep", keep));
  if (format == "gif") return image.gifsave_buffer(VImage::option()->set("keep", keep));
  if (format == "tiff") return image.tiffsave_buffer(VImage::option()->set("keep", keep));
  if (format == "avif") {
    return image.heifsave_buffer(VImage::option()
                                     ->set("Q", quality)
                                     ->set("compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1)
                                     ->set("keep", keep));
  }
  return image.jpegsave_buffer(VImage::option()->set("Q", quality)->set("keep", keep));
}

Napi::Value EncodeRawBody(const Napi::CallbackInfo& info) {
  Bytes pixels = ReadBytes(info[0]);
  Napi::Object options = info[1].As<Napi::Object>();
  int width = ReadInt(options, "width", 0);
  int height = ReadInt(options, "height", 0);
  int channels = ReadInt(options, "channels", 3);
  if (width <= 0 || height <= 0 || channels <= 0 ||
      size_t(width) * size_t(height) * size_t(channels) != pixels.length) {
    throw Failure(Code::Internal, "encodeRaw: pixel buffer does not match width x height x channels");
  }
  VImage image = VImage::new_from_memory_copy(pixels.data, pixels.length, width, height, channels, VIPS_FORMAT_UCHAR);
  VipsInterpretation space = options.Get("cmyk").ToBoolean() ? VIPS_INTERPRETATION_CMYK
                             : channels <= 2                 ? VIPS_INTERPRETATION_B_W
                                                             : VIPS_INTERPRETATION_sRGB;
  image = image.copy(VImage::option()->set("interpretation", space));
  // The sRGB pixels converted to a wide-gamut space, its profile embedded: what a camera or a
  // designer's export sends, and what a render must convert back exactly once.
  std::string profile = ReadString(options, "profile", "");
  if (!profile.empty()) image = image.icc_transform(profile.c_str(), VImage::option()->set("input_profile", "srgb"));
  int orientation = ReadInt(options, "orientation", 0);
  if (orientation > 0) image.set(VIPS_META_ORIENTATION, orientation);
  int pageHeight = ReadInt(options, "pageHeight", 0);
  if (pageHeight > 0) image.set(VIPS_META_PAGE_HEIGHT, pageHeight);
  Napi::Value delays = options.Get("delays");
  if (delays.IsArray()) {
    Napi::Array array = delays.As<Napi::Array>();
    std::vector<int> values;
    for (uint32_t i = 0; i < array.Length(); i++) values.push_back(array.Get(i).As<Napi::Number>().Int32Value());
    image.set("delay", values);
  }
  int loop = ReadInt(options, "loop", -1);
  if (loop >= 0) image.set("loop", loop);
  std::string format = ReadString(options, "format", "jpeg");
  int quality = ReadInt(options, "quality", 90);
  VipsBlob* blob = SaveAs(image, format, quality, orientation > 0, !profile.empty());
  auto* area = reinterpret_cast<VipsArea*>(blob);
  Napi::ArrayBuffer out = CopyOut(info.Env(), area->data, area->length);
  vips_area_unref(area);
  return out;
}

Napi::Value DecodeRawBody(const Napi::CallbackInfo& info) {
  Bytes bytes = ReadBytes(info[0]);
  Input input(bytes.data, bytes.length);
  VImage image = input.Open(false);
  if (image.interpretation() != VIPS_INTERPRETATION_sRGB || image.bands() < 3) {
    image = image.colourspace(VIPS_INTERPRETATION_sRGB);
  }
  if (image.format() != VIPS_FORMAT_UCHAR) image = image.cast(VIPS_FORMAT_UCHAR);
  size_t size = 0;
  std::unique_ptr<void, GFree> memory(image.write_to_memory(&size));
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("data", CopyOut(env, memory.get(), size));
  result.Set("width", image.width());
  result.Set("height", image.height());
  result.Set("channels", image.bands());
  return result;
}

Napi::Value LibvipsLoaderForBody(const Napi::CallbackInfo& info) {
  Bytes bytes = ReadBytes(info[0]);
  const char* loader = vips_foreign_find_load_buffer(bytes.data, bytes.length);
  vips_error_clear();
  if (loader == nullptr) return info.Env().Null();
  return Napi::String::New(info.Env(), loader);
}

}  // namespace

Napi::Value EncodeRaw(const Napi::CallbackInfo& info) { return Guard(info, EncodeRawBody); }
Napi::Value DecodeRaw(const Napi::CallbackInfo& info) { return Guard(info, DecodeRawBody); }
Napi::Value LibvipsLoaderFor(const Napi::CallbackInfo& info) { return Guard(info, LibvipsLoaderForBody); }

}  // namespace iaas
