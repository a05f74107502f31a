// Fuzz target: the address-list parser must never crash on header text; rewriting with
// the identity keeps the header byte for byte; quoting and unquoting undo each other;
// trivial-rewrite's rewrite and resolve rules take every address without crashing and
// resolve always names a recipient with a domain (or fails).
#include <memory>
#include <string>

#include "fuzz_helpers.h"
#include "util/address/address.h"
#include "util/rewrite/resolve.h"
#include "util/rewrite/rewrite.h"

namespace {

// Built-in defaults: mydestination = $myhostname, localhost.$mydomain, localhost.
const postern::rewrite::Resolver& resolver() {
    static std::unique_ptr<postern::rewrite::Resolver> r = [] {
        auto made = postern::rewrite::Resolver::create(postern::config::Config());
        FUZZ_CHECK(made.ok());
        return std::move(*made);
    }();
    return *r;
}

void rewrite_and_resolve(std::string_view a) {
    using namespace postern;
    static const rewrite::RewriteContext local = rewrite::RewriteContext::local(config::Config());
    (void)rewrite::rewrite_address(local, a);
    ipc::mail::ResolveReply r = resolver().resolve("", a);
    if (r.flags & ipc::mail::kResolveFlagError) return;
    FUZZ_CHECK(r.recipient.find('@') != std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace postern::address;
    std::string_view in = postern::fuzz::as_text(data, size);
    std::vector<std::string> addrs = parse_address_list(in);
    for (const std::string& a : addrs) {
        FUZZ_CHECK(to_internal(to_external(a)) == a);
        (void)split(a);
        (void)fold_domain(a);
        rewrite_and_resolve(a);
    }
    rewrite_and_resolve(in);
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
