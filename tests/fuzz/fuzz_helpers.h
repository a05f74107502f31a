// Small helpers shared by the libFuzzer targets in tests/fuzz/ (built by run.sh).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace postern::fuzz {

// The fuzzer's bytes as text, the way a parser sees a file it read.
inline std::string_view as_text(const uint8_t* data, size_t size) {
    return std::string_view(reinterpret_cast<const char*>(data), size);
}

// A property the target checks failed: report it and abort, so libFuzzer keeps the input.
[[noreturn]] inline void violated(const char* what) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
}

#define FUZZ_CHECK(cond)                                        \
    do {                                                        \
        if (!(cond)) ::postern::fuzz::violated(#cond);          \
    } while (0)

}  // namespace postern::fuzz
