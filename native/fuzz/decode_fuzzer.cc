// libFuzzer harness for the decode path: sniff, header, pixel limit, then a
// small render through the same pipeline the addon runs. Every input must end
// in a result or a coded Failure; anything else (a crash, an ASan report, an
// uncaught exception) is a bug. Built and run by scripts/fuzz.sh, not by CI.
#include <vips/vips8>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "../errors.h"
#include "../load.h"
#include "../pipeline.h"

namespace {

bool InitOnce() {
  if (vips_init("iaas-fuzz") != 0) std::abort();
  vips_block_untrusted_set(TRUE);
  vips_cache_set_max(0);
  vips_concurrency_set(1);
  g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, [](const gchar*, GLogLevelFlags, const gchar*, gpointer) {}, nullptr);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool initialised = InitOnce();
  (void)initialised;
  vips_error_clear();
  try {
    iaas::Input input(data, size);
    iaas::Header header = iaas::ReadHeader(input);
    // Small limits keep each run fast; the limit logic itself is under test.
    iaas::CheckPixels(header, 4'000'000, 100);
    iaas::RenderOptions options;
    options.width = 64;
    options.height = 64;
    options.fit = iaas::Fit::Crop;
    options.format = iaas::OutFormat::Png;
    options.timeoutMs = 2000;
    options.maxInputPixels = 4'000'000;
    options.maxPages = 100;
    iaas::Render(input, options);
  } catch (const iaas::Failure&) {
  } catch (const vips::VError&) {
  }
  vips_error_clear();
  return 0;
}
