// The words the addon and TypeScript share: fits, gravities, output formats,
// input formats. Defined once here for C++ (src/options/grammar.ts is the
// TypeScript side; test/native/vocabulary.test.ts checks the two agree).
// A name that is not in a table is a programming error: INTERNAL.
#pragma once

#include <array>
#include <string>
#include <utility>

#include "errors.h"

namespace iaas {

// How an image is fitted into the requested box.
enum class Fit { Clip, Crop, Canvas, Cover };
// Where a `crop` box sits in the fitted image: a compass point, libvips' smart
// crop (attention, entropy), or the original's focal point.
enum class Gravity { Centre, North, South, East, West, Northeast, Northwest, Southeast, Southwest, Attention, Entropy, Focus };
// Formats the renderer writes.
enum class OutFormat { Jpeg, Png, Webp, Avif, Gif };
// Formats accepted as input, recognised by their magic bytes.
enum class Format { Unknown, Jpeg, Png, Gif, Webp, Avif, Tiff };

inline constexpr std::array<std::pair<Fit, const char*>, 4> kFits{{
    {Fit::Clip, "clip"}, {Fit::Crop, "crop"}, {Fit::Canvas, "canvas"}, {Fit::Cover, "cover"}}};
inline constexpr std::array<std::pair<Gravity, const char*>, 12> kGravities{{
    {Gravity::Centre, "centre"}, {Gravity::North, "north"}, {Gravity::South, "south"},
    {Gravity::East, "east"}, {Gravity::West, "west"}, {Gravity::Northeast, "northeast"},
    {Gravity::Northwest, "northwest"}, {Gravity::Southeast, "southeast"}, {Gravity::Southwest, "southwest"},
    {Gravity::Attention, "attention"}, {Gravity::Entropy, "entropy"}, {Gravity::Focus, "focus"}}};
inline constexpr std::array<std::pair<OutFormat, const char*>, 5> kOutFormats{{
    {OutFormat::Jpeg, "jpeg"}, {OutFormat::Png, "png"}, {OutFormat::Webp, "webp"}, {OutFormat::Avif, "avif"},
    {OutFormat::Gif, "gif"}}};
inline constexpr std::array<std::pair<Format, const char*>, 6> kInputFormats{{
    {Format::Jpeg, "jpeg"}, {Format::Png, "png"}, {Format::Gif, "gif"},
    {Format::Webp, "webp"}, {Format::Avif, "avif"}, {Format::Tiff, "tiff"}}};

template <typename Enum, size_t N>
const char* NameIn(const std::array<std::pair<Enum, const char*>, N>& table, Enum value) {
  for (const auto& [entry, name] : table) {
    if (entry == value) return name;
  }
  return "unknown";
}

template <typename Enum, size_t N>
Enum NamedIn(const std::array<std::pair<Enum, const char*>, N>& table, const std::string& name, const char* what) {
  for (const auto& [entry, entryName] : table) {
    if (name == entryName) return entry;
  }
  throw Failure(Code::Internal, std::string("Unknown ") + what + " \"" + name + "\"");
}

inline const char* FitName(Fit fit) { return NameIn(kFits, fit); }
inline const char* OutFormatName(OutFormat format) { return NameIn(kOutFormats, format); }
inline const char* FormatName(Format format) { return NameIn(kInputFormats, format); }

inline const char* GravityName(Gravity gravity) { return NameIn(kGravities, gravity); }

inline Fit FitNamed(const std::string& name) { return NamedIn(kFits, name, "fit"); }
inline Gravity GravityNamed(const std::string& name) { return NamedIn(kGravities, name, "gravity"); }
inline OutFormat OutFormatNamed(const std::string& name) { return NamedIn(kOutFormats, name, "output format"); }

}  // namespace iaas
