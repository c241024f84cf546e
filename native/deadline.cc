#include "deadline.h"

#include <string>

#include "errors.h"

namespace iaas {

Deadline::Deadline(int timeoutMs)
    : enabled_(timeoutMs > 0),
      at_(std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs > 0 ? timeoutMs : 0)),
      timeoutMs_(timeoutMs) {}

Deadline::~Deadline() {
  for (auto& [image, handler] : connections_) {
    g_signal_handler_disconnect(image, handler);
    g_object_unref(image);
  }
}

void Deadline::Watch(const vips::VImage& image) {
  if (!enabled_) return;
  VipsImage* raw = image.get_image();
  vips_image_set_progress(raw, TRUE);
  gulong handler = g_signal_connect(raw, "eval", G_CALLBACK(OnEval), this);
  // Keep the image alive until the handler is disconnected.
  g_object_ref(raw);
  connections_.emplace_back(raw, handler);
}

void Deadline::OnEval(VipsImage* image, VipsProgress* progress, void* self) {
  auto* deadline = static_cast<Deadline*>(self);
  if (std::chrono::steady_clock::now() >= deadline->at_) {
    deadline->fired_.store(true);
    vips_image_set_kill(image, TRUE);
  }
}

void Deadline::Check() {
  if (enabled_ && std::chrono::steady_clock::now() >= at_) fired_.store(true);
  ThrowIfFired();
}

void Deadline::ThrowIfFired() {
  if (fired_.load()) {
    vips_error_clear();
    throw Failure(Code::Timeout, "The render took longer than " + std::to_string(timeoutMs_) + " ms");
  }
}

}  // namespace iaas
