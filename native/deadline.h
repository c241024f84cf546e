// A hard deadline enforced inside libvips: the eval callback kills the image.
#pragma once

#include <vips/vips8>

#include <atomic>
#include <chrono>
#include <utility>
#include <vector>

namespace iaas {

// Owns the signal connections it makes and removes them when it goes out of
// scope, so that no callback can outlive the deadline it points at.
class Deadline {
 public:
  // `timeoutMs` <= 0 means no deadline.
  explicit Deadline(int timeoutMs);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // Arms the kill switch on an image that is about to be evaluated.
  void Watch(const vips::VImage& image);

  // Throws TIMEOUT if the deadline has passed; called between steps.
  void Check();

  // Throws TIMEOUT when the deadline fired, otherwise rethrows nothing.
  void ThrowIfFired();

 private:
  static void OnEval(VipsImage* image, VipsProgress* progress, void* self);

  bool enabled_;
  std::chrono::steady_clock::time_point at_;
  int timeoutMs_;
  std::atomic<bool> fired_{false};
  std::vector<std::pair<VipsImage*, gulong>> connections_;
};

}  // namespace iaas
