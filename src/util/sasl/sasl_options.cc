#include "util/sasl/sasl_options.h"

#include <utility>

#include "util/base/strings.h"

namespace postern::sasl {
namespace {

struct OptionName {
    std::string_view name;
    unsigned flag;
};
constexpr OptionName kOptions[] = {
    {"noplaintext", kNoPlaintext},       {"noactive", kNoActive},
    {"nodictionary", kNoDictionary},     {"forward_secrecy", kForwardSecrecy},
    {"noanonymous", kNoAnonymous},       {"mutual_auth", kMutualAuth},
};

}  // namespace

Result<unsigned> parse_security_options(const std::vector<std::string>& words,
                                        std::string_view whole_value) {
    unsigned flags = 0;
    for (const std::string& word : words) {
        bool known = false;
        for (const OptionName& option : kOptions) {
            if (iequals(word, option.name)) {
                flags |= option.flag;
                known = true;
            }
        }
        if (!known)
            return make_error(strprintf("unknown SASL security options value \"%s\" in \"%.*s\"",
                                        word.c_str(), int(whole_value.size()),
                                        whole_value.data()));
    }
    return flags;
}

Result<MechanismFilter> MechanismFilter::open(const std::vector<std::string>& patterns,
                                              std::string_view param) {
    auto list = rewrite::MatchList::create(param, patterns,
                                           rewrite::MatchStyle::String);
    if (!list) return make_error(list.error());
    MechanismFilter filter;
    filter.list_ = std::move(*list);
    return filter;
}

bool MechanismFilter::keeps(std::string_view mechanism) const {
    return list_.empty() || list_.match(lowercase(mechanism)) == rewrite::Match::Yes;
}

std::string MechanismFilter::apply(std::string_view mechanism_list) const {
    std::string kept;
    for (std::string_view mechanism : split_tokens(mechanism_list, " ")) {
        if (!keeps(mechanism)) continue;
        if (!kept.empty()) kept += ' ';
        kept += mechanism;
    }
    return kept;
}

bool mechanism_listed(std::string_view mechanism_list, std::string_view mechanism) {
    for (std::string_view listed : split_tokens(mechanism_list, " "))
        if (iequals(listed, mechanism)) return true;
    return false;
}

}  // namespace postern::sasl
