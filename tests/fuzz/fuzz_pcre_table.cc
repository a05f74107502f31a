// libFuzzer target: pcre_table(5) rule text. The input is split at its first NUL: the
// table text before it, one lookup key after it (fixed keys are tried too). Parsing and
// lookups must never crash, hang or leak, and a pattern table never reports a lookup
// error, whatever the bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_helpers.h"
#include "util/log/log.h"
#include "util/table/pattern_tables.h"
#include "util/table/table.h"

using namespace postern;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    postern::log::init("fuzz_pcre_table");
    postern::log::Settings quiet;
    quiet.to_stderr = false;
    quiet.to_syslog = false;
    postern::log::configure(quiet);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input = fuzz::as_text(data, size);
    size_t nul = input.find('\0');
    std::string_view text = input.substr(0, nul);
    std::string_view key = nul == std::string_view::npos ? "user@example.com" : input.substr(nul + 1);
    const unsigned flag_sets[] = {table::kReadOnly, table::kReadOnly | table::kFoldMul};
    for (unsigned flags : flag_sets) {
        auto t = table::pcre_table_from_text("fuzz", text, flags);
        FUZZ_CHECK(t->is_pattern());
        for (std::string_view k : {key, std::string_view(), std::string_view("Subject: make money fast")}) {
            table::LookupResult r = t->lookup(k);
            FUZZ_CHECK(r.status != table::LookupResult::Status::Error);
        }
    }
    return 0;
}
