// Reads the options TypeScript has already validated (src/render/options.ts).
// Nothing is re-validated here, but nothing is guessed either: a missing or
// mistyped option is a programming error and fails as INTERNAL naming it.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

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
SummaryOptions ReadSummaryOptions(const Napi::Object& object);

// Required options: INTERNAL when absent or of another type.
int ReadInt(const Napi::Object& object, const char* key);
double ReadDouble(const Napi::Object& object, const char* key);
bool ReadBool(const Napi::Object& object, const char* key);
std::string ReadString(const Napi::Object& object, const char* key);

// Optional options: `fallback` when absent (undefined); INTERNAL when of another type.
int ReadInt(const Napi::Object& object, const char* key, int fallback);
std::string ReadString(const Napi::Object& object, const char* key, const std::string& fallback);

}  // namespace iaas
