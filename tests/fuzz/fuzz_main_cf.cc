// Fuzzes main.cf reading and $name expansion: parse_main_cf must accept or reject any
// bytes with an error naming the file and line; every entry it returns has a non-empty
// name without blanks or '='; expanding every value (with recursion through the other
// entries) must end with a result or a Postfix-worded error, never a crash or a hang.
#include <string>

#include "fuzz_helpers.h"
#include "util/config/config.h"
#include "util/config/config_expand.h"
#include "util/config/main_cf.h"

using namespace postern;
using namespace postern::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    std::vector<std::string> warnings;
    auto entries = parse_main_cf(text, "/fuzz/main.cf", warnings);
    if (!entries.ok()) {
        FUZZ_CHECK(entries.error().rfind("/fuzz/main.cf, line ", 0) == 0);
        return 0;
    }
    for (const ConfigEntry& e : *entries) {
        FUZZ_CHECK(!e.name.empty());
        FUZZ_CHECK(e.name.find_first_of(" \t\r\n\v\f=") == std::string::npos);
        FUZZ_CHECK(e.line >= 1);
    }
    auto cfg = Config::from_text(text, "/fuzz/main.cf", "fuzz");
    FUZZ_CHECK(cfg.ok());
    for (const ConfigEntry& e : *entries) {
        auto v = cfg->try_get(e.name);
        if (!v.ok()) FUZZ_CHECK(!v.error().empty());
        (void)cfg->try_get_int(e.name);
        (void)cfg->try_get_time(e.name);
        (void)cfg->try_get_bool(e.name);
        (void)scan_macro_names(e.value);
    }
    (void)cfg->unused_names();
    (void)cfg->undefined_names();
    return 0;
}
