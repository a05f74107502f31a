// libFuzzer target: cidr_table(5) rule text. The input is split at its first NUL: the
// table text before it, one lookup key after it; IPv4 and IPv6 keys are tried too. A hit
// always carries a non-empty result (rules without one are skipped at open).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_helpers.h"
#include "util/log/log.h"
#include "util/table/pattern_tables.h"
#include "util/table/table.h"

using namespace postern;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    postern::log::init("fuzz_cidr_table");
    postern::log::Settings quiet;
    quiet.to_stderr = false;
    quiet.to_syslog = false;
    postern::log::configure(quiet);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input = fuzz::as_text(data, size);
    size_t nul = input.find('\0');
    auto t = table::cidr_table_from_text("fuzz", input.substr(0, nul));
    std::string_view keys[] = {"192.0.2.1", "10.1.2.3", "::1", "2001:db8::7", "::ffff:1.2.3.4",
                               "x", nul == std::string_view::npos ? "" : input.substr(nul + 1)};
    for (std::string_view k : keys) {
        table::LookupResult r = t->lookup(k);
        FUZZ_CHECK(r.status != table::LookupResult::Status::Error);
        FUZZ_CHECK(!r.found() || !r.value.empty());
    }
    return 0;
}
