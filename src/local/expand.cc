// Delivery macros (Postfix's local_expand.c): $user, $home, $shell, $recipient,
// $extension, $domain, $local and $recipient_delimiter in forward_path, luser_relay,
// mailbox_command and command_execution_directory; other names are main.cf
// parameters. Characters of a value outside the parameter's filter become '_', so a
// crafted address cannot put shell or path syntax into a command or file name.
#include "local/local.h"
#include "util/config/config_expand.h"

namespace postern::local {

namespace {

std::string filtered(std::string value, const std::string& filter) {
    if (filter.empty()) return value;  // luser_relay: Postfix expands it unfiltered
    for (char& c : value)
        if (filter.find(c) == std::string::npos) c = '_';
    return value;
}

}  // namespace

std::string local_expand(const Settings& cfg, const std::string& pattern, const MessageAttr& attr,
                         const UserAttr& usr, const std::string& filter, bool* undefined) {
    auto lookup = [&](std::string_view name) -> std::optional<std::string> {
        auto opt = [&](const std::string& v) -> std::optional<std::string> {
            if (v.empty()) return std::nullopt;
            return filtered(v, filter);
        };
        if (name == "user") return opt(attr.user);
        if (name == "home") return opt(usr.home);
        if (name == "shell") return opt(usr.shell);
        if (name == "recipient") return opt(attr.recipient);
        if (name == "extension") return opt(attr.extension);
        if (name == "domain") return opt(attr.domain);
        if (name == "local") return opt(attr.local);
        if (name == "recipient_delimiter") return opt(attr.delim);
        if (cfg.config && cfg.config->raw(name)) return cfg.config->get(name);
        return std::nullopt;
    };
    config::ExpandOutcome out = config::expand_macros(pattern, lookup, false);
    if (undefined) *undefined = out.error || !out.undefined.empty();
    return out.text;
}

}  // namespace postern::local
