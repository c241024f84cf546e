// Reads the options TypeScript has already validated. No checks are repeated
// here: a wrong type is a programming error and fails as INTERNAL.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

#include "pipeline.h"

namespace iaas {

struct Bytes {
  const uint8_t* data;
  size_t length;
};

// The bytes of a Uint8Array (or Buffer) argument, without a copy.
Bytes ReadBytes(const Napi::Value& value);

RenderOptions ReadRenderOptions(const Napi::Object& object);
PrepareOptions ReadPrepareOptions(const Napi::Object& object);

int ReadInt(const Napi::Object& object, const char* key, int fallback);
double ReadDouble(const Napi::Object& object, const char* key, double fallback);
std::string ReadString(const Napi::Object& object, const char* key, const std::string& fallback);
OutFormat ParseOutFormat(const std::string& name);

}  // namespace iaas
