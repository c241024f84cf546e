#include "options.h"

#include <string>

#include "errors.h"
#include "vocabulary.h"

namespace iaas {

namespace {

[[noreturn]] void Mistyped(const char* key, const char* what) {
  throw Failure(Code::Internal, std::string("Expected ") + what + " for option " + key);
}

Napi::Value Required(const Napi::Object& object, const char* key, const char* what) {
  Napi::Value value = object.Get(key);
  if (value.IsUndefined()) Mistyped(key, what);
  return value;
}

}  // namespace

Bytes ReadBytes(const Napi::Value& value) {
  if (!value.IsTypedArray()) throw Failure(Code::Internal, "Expected a Uint8Array input");
  Napi::Uint8Array array = value.As<Napi::Uint8Array>();
  return Bytes{array.Data(), array.ByteLength()};
}

int ReadInt(const Napi::Object& object, const char* key) {
  Napi::Value value = Required(object, key, "an integer");
  if (!value.IsNumber()) Mistyped(key, "an integer");
  return value.As<Napi::Number>().Int32Value();
}

double ReadDouble(const Napi::Object& object, const char* key) {
  Napi::Value value = Required(object, key, "a number");
  if (!value.IsNumber()) Mistyped(key, "a number");
  return value.As<Napi::Number>().DoubleValue();
}

bool ReadBool(const Napi::Object& object, const char* key) {
  Napi::Value value = Required(object, key, "a boolean");
  if (!value.IsBoolean()) Mistyped(key, "a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::string ReadString(const Napi::Object& object, const char* key) {
  Napi::Value value = Required(object, key, "a string");
  if (!value.IsString()) Mistyped(key, "a string");
  return value.As<Napi::String>().Utf8Value();
}

int ReadInt(const Napi::Object& object, const char* key, int fallback) {
  return object.Get(key).IsUndefined() ? fallback : ReadInt(object, key);
}

std::string ReadString(const Napi::Object& object, const char* key, const std::string& fallback) {
  return object.Get(key).IsUndefined() ? fallback : ReadString(object, key);
}

RenderOptions ReadRenderOptions(const Napi::Object& object) {
  RenderOptions options;
  options.width = ReadInt(object, "width");
  options.height = ReadInt(object, "height");
  options.fit = FitNamed(ReadString(object, "fit"));
  options.gravity = GravityNamed(ReadString(object, "gravity"));
  Napi::Value focus = Required(object, "focus", "null or an {x, y} object");
  if (!focus.IsNull()) {
    if (!focus.IsObject()) Mistyped("focus", "null or an {x, y} object");
    options.focus.x = ReadDouble(focus.As<Napi::Object>(), "x");
    options.focus.y = ReadDouble(focus.As<Napi::Object>(), "y");
  }
  options.maxFrames = ReadInt(object, "maxFrames");
  options.format = OutFormatNamed(ReadString(object, "format"));
  options.quality = ReadInt(object, "quality");
  options.blurSigma = ReadDouble(object, "blurSigma");
  Napi::Value background = Required(object, "background", "an [r, g, b] array");
  if (!background.IsArray() || background.As<Napi::Array>().Length() != 3) Mistyped("background", "an [r, g, b] array");
  Napi::Array rgb = background.As<Napi::Array>();
  for (uint32_t i = 0; i < 3; i++) {
    Napi::Value channel = rgb.Get(i);
    if (!channel.IsNumber()) Mistyped("background", "an [r, g, b] array");
    options.background[i] = channel.As<Napi::Number>().DoubleValue();
  }
  options.timeoutMs = ReadInt(object, "timeoutMs");
  options.maxInputPixels = ReadDouble(object, "maxInputPixels");
  options.maxPages = ReadInt(object, "maxPages");
  options.avifEffort = ReadInt(object, "avifEffort");
  options.sourceWidth = ReadInt(object, "sourceWidth");
  options.sourceHeight = ReadInt(object, "sourceHeight");
  options.sourceQuality = ReadInt(object, "sourceQuality");
  options.workingCopy = ReadBool(object, "workingCopy");
  return options;
}

PrepareOptions ReadPrepareOptions(const Napi::Object& object) {
  PrepareOptions options;
  Napi::Value crop = object.Get("crop");
  if (!crop.IsUndefined()) {
    if (!crop.IsObject()) Mistyped("crop", "an object");
    Napi::Object rect = crop.As<Napi::Object>();
    options.crop = true;
    options.rect.x = ReadInt(rect, "x");
    options.rect.y = ReadInt(rect, "y");
    options.rect.width = ReadInt(rect, "width");
    options.rect.height = ReadInt(rect, "height");
  }
  options.maxPixels = ReadDouble(object, "maxPixels");
  options.maxInputPixels = ReadDouble(object, "maxInputPixels");
  options.maxPages = ReadInt(object, "maxPages");
  options.timeoutMs = ReadInt(object, "timeoutMs");
  options.keepMetadata = ReadBool(object, "keepMetadata");
  options.summarise = ReadBool(object, "summarise");
  return options;
}

SummaryOptions ReadSummaryOptions(const Napi::Object& object) {
  SummaryOptions options;
  options.maxInputPixels = ReadDouble(object, "maxInputPixels");
  options.maxPages = ReadInt(object, "maxPages");
  options.timeoutMs = ReadInt(object, "timeoutMs");
  return options;
}

}  // namespace iaas
