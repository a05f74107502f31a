#include "util/sasl/sasl_options.h"

#include <utility>

#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/table/table.h"

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

Result<MechanismFilter> MechanismFilter::open(const std::vector<std::string>& patterns) {
    MechanismFilter filter;
    for (std::string_view text : patterns) {
        Pattern pattern;
        while (!text.empty() && text.front() == '!') {
            pattern.negate = !pattern.negate;
            text.remove_prefix(1);
        }
        if (!text.empty() && text.front() == '/') {
            // "/file/name": the file's own list, in place (Postfix's string lists).
            auto more = open_file_patterns(std::string(text));
            if (!more) return make_error(more.error());
            for (Pattern& p : more->patterns_) filter.patterns_.push_back(std::move(p));
            continue;
        }
        if (text.find(':') != std::string_view::npos) {
            auto table = table::open_table(text);
            if (!table) return make_error(table.error());
            pattern.table = std::move(*table);
        } else {
            pattern.name = text;
        }
        filter.patterns_.push_back(std::move(pattern));
    }
    return filter;
}

Result<MechanismFilter> MechanismFilter::open_file_patterns(const std::string& path) {
    auto text = read_file(path);
    if (!text) return make_error(text.error());
    std::vector<std::string> words;
    for (std::string_view line : split_tokens(*text, "\n")) {
        line = trim(line);
        if (line.empty() || line.front() == '#') continue;
        for (std::string_view word : split_tokens(line, " \t,")) words.emplace_back(word);
    }
    return open(words);
}

bool MechanismFilter::keeps(std::string_view mechanism) const {
    if (patterns_.empty()) return true;
    for (const Pattern& pattern : patterns_) {
        bool match = pattern.table ? pattern.table->lookup(lowercase(mechanism)).found()
                                   : iequals(pattern.name, mechanism);
        if (match) return !pattern.negate;
    }
    return false;
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
