// Stable error codes and the failure the pipeline throws; js_errors.* turns it into a JavaScript error.
#pragma once

#include <exception>
#include <string>

namespace iaas {

// The codes are part of the public API: TypeScript maps each to one HTTP status.
// EncodeFailed: an image that decodes could not be encoded (the service's failure, not the input's).
enum class Code { UnsupportedFormat, TooManyPixels, CorruptImage, EncodeFailed, Timeout, Internal };

const char* CodeName(Code code);

// A failure with a stable code. `detail` keeps libvips' own text for logs only.
class Failure : public std::exception {
 public:
  Failure(Code code, std::string message, std::string detail = "");
  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  const std::string& detail() const noexcept { return detail_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  Code code_;
  std::string message_;
  std::string detail_;
};

// Returns libvips' per-process error buffer and clears it, so that no text
// leaks into a later call.
std::string TakeVipsError();

}  // namespace iaas
