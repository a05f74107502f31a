// Fuzz target: smtp(8)'s TLS policy syntax (util/smtpclient/tls_site_policy.h: a
// smtp_tls_policy_maps value and the lookup keys of a next hop) and the protocol list
// syntax it passes on (util/tls/tls_policy.h). Properties:
//   - no crash, no sanitizer report;
//   - a parsed policy has a real level, and match= names only for the levels that
//     match certificates;
//   - the lookup keys start with the next hop itself; every other key is a suffix of it
//     that starts with a dot;
//   - a protocol range that parses enables at least one protocol, the minimum not above
//     the maximum.
#include <string>

#include "fuzz_helpers.h"
#include "util/smtpclient/tls_site_policy.h"
#include "util/tls/tls_policy.h"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    if (auto p = smtpclient::parse_tls_policy(text); p.ok()) {
        FUZZ_CHECK(p->level != tls::ClientLevel::Invalid);
        FUZZ_CHECK(p->match.empty() || tls::level_must_match(p->level));
    }
    auto keys = smtpclient::tls_policy_keys(text);
    FUZZ_CHECK(!keys.empty() && keys[0] == text);
    for (size_t i = 1; i < keys.size(); ++i) {
        FUZZ_CHECK(keys[i].size() > 1 && keys[i][0] == '.' && keys[i].size() < text.size());
        FUZZ_CHECK(text.substr(text.size() - keys[i].size()) == keys[i]);
    }
    if (auto r = tls::parse_protocols(text); r.ok())
        FUZZ_CHECK(r->max_version == 0 || r->min_version <= r->max_version);
    return 0;
}
