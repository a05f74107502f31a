// Database client tables in parameter values, as Postfix's postconf_dbms.c sees them:
// "mysql:/etc/postern/x.cf" files are read and their unknown settings reported;
// legacy "mysql:name" tables make "name_hosts", "name_user", ... valid main.cf names.
// Postern's only database client table is mysql, so that is the type checked here.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "postconf/param_space.h"
#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/config/main_cf.h"
#include "util/config/master_cf.h"

namespace postern::postconf {
namespace {

// The settings mysql_table(5) documents (Postfix 3.7's pcf_mysql_suffixes).
constexpr std::string_view kMysqlSettings[] = {
    "hosts",           "user",          "password",     "dbname",        "query",
    "result_format",   "domain",        "expansion_limit", "option_file", "option_group",
    "require_result_set", "tls_cert_file", "tls_key_file", "tls_CAfile",  "tls_CApath",
    "tls_verify_cert", "tls_ciphers",   "select_field", "table",         "where_field",
    "additional_conditions",
};

bool is_pattern_type(std::string_view type) { return type == "regexp" || type == "pcre"; }

// Splits on commas and blanks, a "{...}" group staying inside one token.
std::vector<std::string> split_list_quoted(std::string_view s) {
    std::vector<std::string> out;
    for (std::string_view t : config::split_outside_braces(s, ", \t\r\n")) out.emplace_back(t);
    return out;
}

// The text inside a leading "{...}" (untrimmed, as extpar without STRIP leaves it).
std::string inside_braces(std::string_view s) {
    if (s.empty() || s[0] != '{') return std::string(s);
    size_t close = s.rfind('}');
    if (close == std::string_view::npos || close == 0) return std::string(s.substr(1));
    return std::string(s.substr(1, close - 1));
}

}  // namespace

void ParamSpace::register_dbms(const std::string& value, int local, std::vector<std::string>& warnings) {
    ShowMode eval{false, false, true};
    register_dbms_tokens(expand(value, eval, local), local, true, warnings);
}

void ParamSpace::register_dbms_tokens(std::string_view text, int local, bool recurse,
                                      std::vector<std::string>& warnings) {
    for (const std::string& token : split_list_quoted(text)) {
        if (token[0] == '{') {
            if (recurse) register_dbms_tokens(inside_braces(token), local, recurse, warnings);
            continue;
        }
        // "proxy:mysql:/x.cf" is checked as "mysql:/x.cf", as proxymap would open it.
        std::string_view rest = token, type, name;
        bool has_name = false;
        for (;;) {
            size_t colon = rest.find(':');
            if (colon == std::string_view::npos) {
                has_name = false;
                break;
            }
            type = rest.substr(0, colon);
            name = rest.substr(colon + 1);
            has_name = true;
            if (type != "proxy") break;
            rest = name;
        }
        if (!has_name) continue;
        if (!name.empty() && name[0] == '/') {
            if (type == "mysql") check_dbms_client(type, std::string(name), warnings);
            continue;
        }
        if (!name.empty() && name[0] == '.') continue;
        if (!name.empty() && name[0] == '{') {
            register_dbms_tokens(inside_braces(name), local, !is_pattern_type(type) && recurse, warnings);
            continue;
        }
        if (type == "mysql")
            for (std::string_view suffix : kMysqlSettings)
                flag_user_parameter(std::string(name) + "_" + std::string(suffix), local, false, warnings);
    }
}

void ParamSpace::check_dbms_client(std::string_view type, const std::string& path,
                                   std::vector<std::string>& warnings) {
    std::string spec = std::string(type) + ":" + path;
    if (!dbms_files_seen_.insert(spec).second) return;
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) {
        // Files with passwords may be unreadable to the caller; that is not worth a warning.
        if (errno != EACCES)
            warnings.push_back(strprintf("open \"%.*s\" configuration \"%s\": %s", static_cast<int>(type.size()),
                                         type.data(), path.c_str(), std::strerror(errno)));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        warnings.push_back(strprintf("open \"%.*s\" configuration \"%s\": not a regular file",
                                     static_cast<int>(type.size()), type.data(), path.c_str()));
        return;
    }
    auto text = read_file(path);
    if (!text) {
        if (errno != EACCES)
            warnings.push_back(strprintf("open \"%.*s\" configuration \"%s\": %s", static_cast<int>(type.size()),
                                         type.data(), path.c_str(), std::strerror(errno)));
        return;
    }
    auto entries = config::parse_main_cf(*text, path);
    if (!entries) {
        warnings.push_back(entries.error());
        return;
    }
    ValueMap settings;
    for (const config::ConfigEntry& e : *entries) settings[e.name] = e.value;
    for (const auto& [name, value] : settings) {
        if (std::find(std::begin(kMysqlSettings), std::end(kMysqlSettings), name) != std::end(kMysqlSettings))
            continue;
        warnings.push_back(strprintf("%s: unused parameter: %s=%s", spec.c_str(), name.c_str(), value.c_str()));
    }
}

}  // namespace postern::postconf
