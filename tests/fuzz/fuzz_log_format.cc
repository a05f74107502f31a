// Fuzzes the log record builders: format_delay (Postfix's format_tv rounding) must
// print a well-formed decimal close to its input for any time and precision, and
// sanitize/format_logfile_line must never pass a control character or exceed the
// record limit.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <string>

#include "fuzz_helpers.h"
#include "util/log/log.h"
#include "util/log/mail_events.h"

using namespace postern;

namespace {

void check_delay(FuzzedDataProvider& in) {
    long sec = in.ConsumeIntegralInRange<long>(-10, 10L * 365 * 86400);
    long usec = in.ConsumeIntegralInRange<long>(-10, 2000000);
    int sig = in.ConsumeIntegralInRange<int>(-1, 8);
    int max = in.ConsumeIntegralInRange<int>(-1, 8);
    std::string out = log::format_delay(sec, usec, sig, max);
    FUZZ_CHECK(!out.empty());
    size_t dot = out.find('.');
    for (size_t i = 0; i < out.size(); ++i)
        FUZZ_CHECK((out[i] >= '0' && out[i] <= '9') || i == dot);
    if (dot != std::string::npos) {
        FUZZ_CHECK(dot > 0 && dot + 1 < out.size());
        FUZZ_CHECK(out.back() != '0');  // trailing zeros are dropped
        FUZZ_CHECK(out.size() - dot - 1 <= 6);
    }
    // The printed value is within one unit of the coarsest resolution (1 s) of the
    // input; negative inputs print as 0.
    double want = (sec < 0 || usec < 0) ? 0.0 : sec + usec / 1e6;
    FUZZ_CHECK(std::fabs(std::stod(out) - want) <= 1.0);
}

void check_sanitize(FuzzedDataProvider& in) {
    std::string text = in.ConsumeRemainingBytesAsString();
    std::string clean = log::sanitize(text);
    FUZZ_CHECK(clean.size() <= 2000);
    for (char c : clean) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    std::string line = log::format_logfile_line_at(log::Level::Warning, text, 42, 0);
    FUZZ_CHECK(line.find('\n') == std::string::npos);
    (void)log::check_maillog_prefix(text, "/var, /dev/stdout");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    check_delay(in);
    check_sanitize(in);
    return 0;
}
