#include "quality.h"

#include <array>
#include <cstdlib>
#include <limits>

namespace iaas {

namespace {

using Table = std::array<int, 64>;

// JPEG Annex K tables in natural (row-major) order.
constexpr Table kLuminance = {
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};
constexpr Table kChrominance = {
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99};
// DQT segments store coefficients in zigzag order; this maps them back.
constexpr std::array<int, 64> kNaturalOrder = {
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

struct Tables {
  Table luma{};
  Table chroma{};
  bool hasLuma = false;
  bool hasChroma = false;
};

int ReadBe16(const uint8_t* p) { return (int(p[0]) << 8) | int(p[1]); }

// Reads one DQT segment's tables (there may be several per segment).
void ReadDqt(const uint8_t* p, size_t length, Tables& tables) {
  size_t offset = 0;
  while (offset < length) {
    int precision = p[offset] >> 4;
    int id = p[offset] & 0x0F;
    size_t entry = precision ? 2 : 1;
    if (offset + 1 + 64 * entry > length) return;
    Table natural{};
    for (int k = 0; k < 64; k++) {
      const uint8_t* value = p + offset + 1 + k * entry;
      natural[kNaturalOrder[k]] = precision ? ReadBe16(value) : value[0];
    }
    if (id == 0) {
      tables.luma = natural;
      tables.hasLuma = true;
    } else if (id == 1) {
      tables.chroma = natural;
      tables.hasChroma = true;
    }
    offset += 1 + 64 * entry;
  }
}

// Walks the markers up to the first scan, collecting quantisation tables.
Tables FindTables(const uint8_t* data, size_t length) {
  Tables tables;
  size_t i = 2;
  while (i + 4 <= length) {
    if (data[i] != 0xFF) break;
    int marker = data[i + 1];
    if (marker == 0xFF) {
      i += 1;
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      i += 2;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) break;
    size_t segment = ReadBe16(data + i + 2);
    if (segment < 2 || i + 2 + segment > length) break;
    if (marker == 0xDB) ReadDqt(data + i + 4, segment - 2, tables);
    i += 2 + segment;
  }
  return tables;
}

// libjpeg's jpeg_set_quality: scale the Annex K table, clamp to baseline.
int Scaled(int base, int quality) {
  int scale = quality < 50 ? 5000 / quality : 200 - quality * 2;
  int value = (base * scale + 50) / 100;
  if (value < 1) value = 1;
  if (value > 255) value = 255;
  return value;
}

long Distance(const Table& actual, const Table& base, int quality) {
  long sum = 0;
  for (int k = 0; k < 64; k++) sum += std::labs(long(actual[k]) - Scaled(base[k], quality));
  return sum;
}

}  // namespace

int EstimateJpegQuality(const uint8_t* data, size_t length) {
  if (data == nullptr || length < 4) return -1;
  Tables tables = FindTables(data, length);
  if (!tables.hasLuma) return -1;
  int best = -1;
  long bestDistance = std::numeric_limits<long>::max();
  for (int quality = 1; quality <= 100; quality++) {
    long distance = Distance(tables.luma, kLuminance, quality);
    if (tables.hasChroma) distance += Distance(tables.chroma, kChrominance, quality);
    // Ties at the clamped low end: prefer the higher quality, which keeps more.
    if (distance <= bestDistance) {
      bestDistance = distance;
      best = quality;
    }
  }
  return best;
}

}  // namespace iaas
