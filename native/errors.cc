#include "errors.h"

#include <vips/vips8>


namespace iaas {

const char* CodeName(Code code) {
  switch (code) {
    case Code::UnsupportedFormat: return "UNSUPPORTED_FORMAT";
    case Code::TooManyPixels: return "TOO_MANY_PIXELS";
    case Code::CorruptImage: return "CORRUPT_IMAGE";
    case Code::EncodeFailed: return "ENCODE_FAILED";
    case Code::Timeout: return "TIMEOUT";
    case Code::Internal: return "INTERNAL";
  }
  return "INTERNAL";
}

Failure::Failure(Code code, std::string message, std::string detail)
    : code_(code), message_(std::move(message)), detail_(std::move(detail)) {}

std::string TakeVipsError() {
  std::string text = vips_error_buffer();
  vips_error_clear();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace iaas
