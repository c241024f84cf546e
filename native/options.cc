#include "options.h"

#include <string>

#include "errors.h"

namespace iaas {

Bytes ReadBytes(const Napi::Value& value) {
  if (!value.IsTypedArray()) throw Failure(Code::Internal, "Expected a Uint8Array input");
  Napi::Uint8Array array = value.As<Napi::Uint8Array>();
  return Bytes{array.Data(), array.ByteLength()};
}

int ReadInt(const Napi::Object& object, const char* key, int fallback) {
  Napi::Value value = object.Get(key);
  return value.IsNumber() ? value.As<Napi::Number>().Int32Value() : fallback;
}

double ReadDouble(const Napi::Object& object, const char* key, double fallback) {
  Napi::Value value = object.Get(key);
  return value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : fallback;
}

std::string ReadString(const Napi::Object& object, const char* key, const std::string& fallback) {
  Napi::Value value = object.Get(key);
  return value.IsString() ? value.As<Napi::String>().Utf8Value() : fallback;
}

OutFormat ParseOutFormat(const std::string& name) {
  if (name == "png") return OutFormat::Png;
  if (name == "webp") return OutFormat::Webp;
  if (name == "avif") return OutFormat::Avif;
  return OutFormat::Jpeg;
}

namespace {

Fit ParseFit(const std::string& name) {
  if (name == "crop") return Fit::Crop;
  if (name == "canvas") return Fit::Canvas;
  if (name == "cover") return Fit::Cover;
  return Fit::Clip;
}

}  // namespace

RenderOptions ReadRenderOptions(const Napi::Object& object) {
  RenderOptions options;
  options.width = ReadInt(object, "width", 0);
  options.height = ReadInt(object, "height", 0);
  options.fit = ParseFit(ReadString(object, "fit", "clip"));
  options.format = ParseOutFormat(ReadString(object, "format", "jpeg"));
  options.quality = ReadInt(object, "quality", -1);
  options.blurSigma = ReadDouble(object, "blurSigma", 0);
  Napi::Value background = object.Get("background");
  if (background.IsArray()) {
    Napi::Array rgb = background.As<Napi::Array>();
    for (uint32_t i = 0; i < 3 && i < rgb.Length(); i++) {
      options.background[i] = rgb.Get(i).As<Napi::Number>().DoubleValue();
    }
  }
  options.timeoutMs = ReadInt(object, "timeoutMs", 0);
  options.maxInputPixels = ReadDouble(object, "maxInputPixels", 0);
  return options;
}

PrepareOptions ReadPrepareOptions(const Napi::Object& object) {
  PrepareOptions options;
  Napi::Value crop = object.Get("crop");
  if (crop.IsObject()) {
    Napi::Object rect = crop.As<Napi::Object>();
    options.crop = true;
    options.rect.x = ReadInt(rect, "x", 0);
    options.rect.y = ReadInt(rect, "y", 0);
    options.rect.width = ReadInt(rect, "width", 1);
    options.rect.height = ReadInt(rect, "height", 1);
  }
  options.maxPixels = ReadDouble(object, "maxPixels", 0);
  options.maxInputPixels = ReadDouble(object, "maxInputPixels", 0);
  options.timeoutMs = ReadInt(object, "timeoutMs", 0);
  return options;
}

}  // namespace iaas
