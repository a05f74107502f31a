// Parsing of the Postfix SASL parameters that do not depend on the SASL library:
// smtpd_sasl_security_options (noplaintext, noactive, ...) and
// smtpd_sasl_mechanism_filter (which of the library's mechanisms smtpd offers).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/rewrite/match_list.h"

namespace postern::sasl {

// Bits with Cyrus's SASL_SEC_* values, so the Cyrus code can pass them straight on.
enum SecurityFlag : unsigned {
    kNoPlaintext = 0x0001,
    kNoActive = 0x0002,
    kNoDictionary = 0x0004,
    kForwardSecrecy = 0x0008,
    kNoAnonymous = 0x0010,
    kMutualAuth = 0x0040,
};

// "noanonymous, noplaintext" -> flags; an unknown word is an error worded as Postfix's
// ("unknown SASL security options value \"x\" in \"...\"").
Result<unsigned> parse_security_options(const std::vector<std::string>& words,
                                        std::string_view whole_value);

// smtpd_sasl_mechanism_filter (Postfix 3.6): a list of patterns, matched
// case-insensitively against each mechanism, first match wins, no match drops it.
// A pattern is a mechanism name or a type:table (a match when the lowercase name is
// found; "static:rest" matches anything) or a /file/name holding more patterns, any of
// them after "!" to drop instead of keep.
class MechanismFilter {
public:
    MechanismFilter() = default;  // empty filter: keep everything
    // Opens the tables; the error is open_table's ("unsupported dictionary type: x").
    // `param` names the list in errors (smtp(8): smtp_sasl_mechanism_filter).
    static Result<MechanismFilter> open(const std::vector<std::string>& patterns,
                                        std::string_view param = "smtpd_sasl_mechanism_filter");
    bool keeps(std::string_view mechanism) const;
    // The mechanisms of a space-separated list that the filter keeps, space-separated.
    std::string apply(std::string_view mechanism_list) const;

private:
    rewrite::MatchList list_;  // Postfix's string_list
};

// True when `mechanism` is one of the space-separated `mechanism_list` (any case).
bool mechanism_listed(std::string_view mechanism_list, std::string_view mechanism);

}  // namespace postern::sasl
