// Fuzz target: the address-list parser must never crash on header text; rewriting with
// the identity keeps the header byte for byte; quoting and unquoting undo each other.
#include <string>

#include "fuzz_helpers.h"
#include "util/address/address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace postern::address;
    std::string_view in = postern::fuzz::as_text(data, size);
    std::vector<std::string> addrs = parse_address_list(in);
    for (const std::string& a : addrs) {
        FUZZ_CHECK(to_internal(to_external(a)) == a);
        (void)split(a);
        (void)fold_domain(a);
    }
    auto same = [](std::string_view a) { return std::string(a); };
    FUZZ_CHECK(rewrite_address_list(in, same) == in);
    // A rewrite that changes every address re-emits the whole tree as text.
    auto tag = [](std::string_view a) { return "x" + std::string(a) + "@t"; };
    std::string out = rewrite_address_list(in, tag);
    (void)parse_address_list(out);
    (void)to_internal(in);
    (void)to_external(in);
    return 0;
}
