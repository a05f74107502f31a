// Fuzzes the master.cf parser: any bytes give services or an error naming the file and
// line; each service has all eight columns, a known type, sane numbers, and -o
// overrides with non-empty names.
#include <string>

#include "fuzz_helpers.h"
#include "util/config/master_cf.h"

using namespace postern;
using namespace postern::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto cf = parse_master_cf(fuzz::as_text(data, size), "/fuzz/master.cf", 100);
    if (!cf.ok()) {
        FUZZ_CHECK(cf.error().rfind("/fuzz/master.cf: line ", 0) == 0);
        return 0;
    }
    for (const MasterService& s : cf->services) {
        for (const std::string& c : s.columns) FUZZ_CHECK(!c.empty());
        FUZZ_CHECK(s.line >= 1);
        FUZZ_CHECK(s.wakeup_seconds >= 0);
        FUZZ_CHECK(s.max_proc >= 0);
        FUZZ_CHECK(!service_type_name(s.type).empty());
        FUZZ_CHECK(s.type != ServiceType::Inet || !s.private_service);
        FUZZ_CHECK(s.type != ServiceType::Inet || !s.inet_port.empty());
        for (const MasterOverride& o : s.overrides) FUZZ_CHECK(!o.name.empty());
    }
    return 0;
}
