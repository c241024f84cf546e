// The addon's entry: libvips set-up once per process, and the exported calls.
#include <napi.h>
#include <vips/vips8>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "js_errors.h"
#include "load.h"
#include "options.h"
#include "pipeline.h"
#include "testing.h"
#include "vocabulary.h"

namespace iaas {

using vips::VImage;

namespace {

// libvips is initialised once per process, whichever thread loads us first.
void InitVipsOnce() {
  static std::once_flag once;
  std::call_once(once, []() {
    if (vips_init("iaas") != 0) throw Failure(Code::Internal, "libvips failed to initialise", TakeVipsError());
    // Only loaders we call by name may run; everything untrusted is blocked.
    vips_block_untrusted_set(TRUE);
    // Each render is new work: the operation cache only costs memory here.
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    vips_concurrency_set(1);
    // Warnings are failures (fail_on) or noise; never print them to stderr.
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, [](const gchar*, GLogLevelFlags, const gchar*, gpointer) {},
                      nullptr);
  });
}

Napi::ArrayBuffer CopyOut(Napi::Env env, const Encoded& encoded) {
  // One copy into memory V8 owns: such a buffer can be transferred between threads.
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, encoded.size());
  if (encoded.size() > 0) std::memcpy(buffer.Data(), encoded.data(), encoded.size());
  return buffer;
}

Napi::Value ProbeBody(const Napi::CallbackInfo& info) {
  Bytes bytes = ReadBytes(info[0]);
  Input input(bytes.data, bytes.length);
  VImage image = input.Open(true);
  Header header = HeaderOf(input, image);
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  // An animation's frame delays (ms) and loop count (0: forever), as its header declares.
  if (image.get_typeof("delay") != 0) {
    std::vector<int> delays = image.get_array_int("delay");
    Napi::Array array = Napi::Array::New(env, delays.size());
    for (uint32_t i = 0; i < delays.size(); i++) array.Set(i, delays[i]);
    result.Set("delays", array);
  }
  if (image.get_typeof("loop") != 0) result.Set("loop", image.get_int("loop"));
  result.Set("format", FormatName(header.format));
  result.Set("width", header.width);
  result.Set("height", header.height);
  result.Set("pages", header.pages);
  result.Set("orientation", header.orientation);
  result.Set("hasAlpha", header.hasAlpha);
  result.Set("interlaced", header.interlaced);
  if (header.jpegQuality > 0) result.Set("jpegQuality", header.jpegQuality);
  return result;
}

Napi::Value RenderBody(const Napi::CallbackInfo& info) {
  Bytes bytes = ReadBytes(info[0]);
  RenderOptions options = ReadRenderOptions(info[1].As<Napi::Object>());
  Input input(bytes.data, bytes.length);
  RenderResult rendered = Render(input, options);
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("data", CopyOut(env, rendered.data));
  result.Set("format", OutFormatName(rendered.format));
  result.Set("width", rendered.width);
  result.Set("height", rendered.height);
  return result;
}

// {dominant: '#rrggbb', pixels, pixelsWidth, pixelsHeight, lqip}: the BlurHash is encoded from `pixels` in TypeScript.
Napi::Object SummaryObject(Napi::Env env, const Summary& summary) {
  Napi::Object result = Napi::Object::New(env);
  char hex[8];
  std::snprintf(hex, sizeof hex, "#%02x%02x%02x", summary.dominant[0], summary.dominant[1], summary.dominant[2]);
  result.Set("dominant", hex);
  Napi::ArrayBuffer pixels = Napi::ArrayBuffer::New(env, summary.pixels.size());
  if (!summary.pixels.empty()) std::memcpy(pixels.Data(), summary.pixels.data(), summary.pixels.size());
  result.Set("pixels", pixels);
  result.Set("pixelsWidth", summary.pixelsWidth);
  result.Set("pixelsHeight", summary.pixelsHeight);
  result.Set("lqip", CopyOut(env, summary.lqip));
  return result;
}

Napi::Value PrepareOriginalBody(const Napi::CallbackInfo& info) {
  Bytes bytes = ReadBytes(info[0]);
  PrepareOptions options = ReadPrepareOptions(info[1].As<Napi::Object>());
  Input input(bytes.data, bytes.length);
  PrepareResult prepared = PrepareOriginal(input, options);
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("changed", prepared.changed);
  if (prepared.changed) result.Set("data", CopyOut(env, prepared.data));
  result.Set("format", FormatName(prepared.format));
  result.Set("width", prepared.width);
  result.Set("height", prepared.height);
  if (prepared.jpegQuality > 0) result.Set("jpegQuality", prepared.jpegQuality);
  result.Set("frames", prepared.frames);
  if (prepared.summary) result.Set("summary", SummaryObject(env, *prepared.summary));
  return result;
}

Napi::Value SummariseBody(const Napi::CallbackInfo& info) {
  Bytes bytes = ReadBytes(info[0]);
  SummaryOptions options = ReadSummaryOptions(info[1].As<Napi::Object>());
  Input input(bytes.data, bytes.length);
  SummaryResult summarised = SummariseOriginal(input, options);
  Napi::Env env = info.Env();
  Napi::Object result = SummaryObject(env, summarised.summary);
  result.Set("frames", summarised.frames);
  return result;
}

Napi::Value SetConcurrencyBody(const Napi::CallbackInfo& info) {
  vips_concurrency_set(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Value StatsBody(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("memory", static_cast<double>(vips_tracked_get_mem()));
  result.Set("memoryHighwater", static_cast<double>(vips_tracked_get_mem_highwater()));
  result.Set("allocations", vips_tracked_get_allocs());
  result.Set("files", vips_tracked_get_files());
  result.Set("concurrency", vips_concurrency_get());
  return result;
}

Napi::Value VersionsBody(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("vips", vips_version_string());
  return result;
}

template <typename Table>
Napi::Array NamesOf(Napi::Env env, const Table& table) {
  Napi::Array names = Napi::Array::New(env, table.size());
  for (uint32_t i = 0; i < table.size(); i++) names.Set(i, table[i].second);
  return names;
}

Napi::Value VocabularyBody(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("fits", NamesOf(env, kFits));
  result.Set("gravities", NamesOf(env, kGravities));
  result.Set("outputFormats", NamesOf(env, kOutFormats));
  result.Set("inputFormats", NamesOf(env, kInputFormats));
  return result;
}

template <Napi::Value (*Body)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  return Guard(info, Body);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitVipsOnce();
  exports.Set("probe", Napi::Function::New(env, Guarded<ProbeBody>, "probe"));
  exports.Set("render", Napi::Function::New(env, Guarded<RenderBody>, "render"));
  exports.Set("prepareOriginal", Napi::Function::New(env, Guarded<PrepareOriginalBody>, "prepareOriginal"));
  exports.Set("summarise", Napi::Function::New(env, Guarded<SummariseBody>, "summarise"));
  exports.Set("setConcurrency", Napi::Function::New(env, Guarded<SetConcurrencyBody>, "setConcurrency"));
  exports.Set("stats", Napi::Function::New(env, Guarded<StatsBody>, "stats"));
  exports.Set("versions", Napi::Function::New(env, Guarded<VersionsBody>, "versions"));
  exports.Set("vocabulary", Napi::Function::New(env, Guarded<VocabularyBody>, "vocabulary"));
  exports.Set("encodeRaw", Napi::Function::New(env, EncodeRaw, "encodeRaw"));
  exports.Set("decodeRaw", Napi::Function::New(env, DecodeRaw, "decodeRaw"));
  exports.Set("libvipsLoaderFor", Napi::Function::New(env, LibvipsLoaderFor, "libvipsLoaderFor"));
  return exports;
}

}  // namespace

}  // namespace iaas

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return iaas::Init(env, exports); }

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
