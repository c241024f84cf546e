#include "js_errors.h"

#include <vips/vips8>

#include <new>

namespace iaas {

namespace {

Napi::Error MakeError(Napi::Env env, Code code, const std::string& message, const std::string& detail) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, CodeName(code)));
  if (!detail.empty()) error.Set("detail", Napi::String::New(env, detail));
  return error;
}

}  // namespace

Napi::Value Guard(const Napi::CallbackInfo& info, Napi::Value (*body)(const Napi::CallbackInfo&)) {
  Napi::Env env = info.Env();
  // A previous call's failure must not leak into this one's message.
  vips_error_clear();
  try {
    return body(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const Failure& failure) {
    vips_error_clear();
    throw MakeError(env, failure.code(), failure.message(), failure.detail());
  } catch (const vips::VError& error) {
    // A libvips failure that no step classified: the input could not be decoded.
    std::string detail = error.what();
    vips_error_clear();
    throw MakeError(env, Code::CorruptImage, "The image could not be decoded", detail);
  } catch (const std::bad_alloc&) {
    vips_error_clear();
    throw MakeError(env, Code::Internal, "Out of memory while processing the image", "");
  } catch (const std::exception& error) {
    vips_error_clear();
    throw MakeError(env, Code::Internal, "Image processing failed", error.what());
  } catch (...) {
    vips_error_clear();
    throw MakeError(env, Code::Internal, "Image processing failed", "unknown exception");
  }
}

}  // namespace iaas
