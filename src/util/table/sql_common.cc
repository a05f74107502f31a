#include "util/table/sql_common.h"

#include <algorithm>

#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/table/pattern_source.h"

namespace postern::table::sql {
namespace {

// What a template needs; the names follow Postfix's DB_COMMON_* so the rules are easy
// to compare with db_common.c.
enum : unsigned {
    kKeyDomain = 1u << 0,    // %d in the query, %D or %1..%9 anywhere
    kKeyUser = 1u << 1,      // %u in the query, %U anywhere
    kValueDomain = 1u << 2,  // %d in result_format
    kValueUser = 1u << 3,    // %u in result_format
};

// A user@domain split as Postfix does it: at the last '@'.
struct AddressParts {
    bool has_at = false;
    std::string_view user;    // whole string when there is no '@'
    std::string_view domain;  // empty when there is no '@'
};

AddressParts split_address(std::string_view s) {
    size_t at = s.rfind('@');
    if (at == std::string_view::npos) return {false, s, {}};
    return {true, s.substr(0, at), s.substr(at + 1)};
}

// Whether an address satisfies "needs a domain" / "needs a non-empty local part".
bool parts_ok(const AddressParts& a, bool need_domain, bool need_user) {
    if (need_domain && a.domain.empty()) return false;
    if (need_user && a.has_at && a.user.empty()) return false;
    return true;
}

// The domain labels %1..%9 index; false when the domain has fewer than `needed`.
// Empty labels (leading, trailing or doubled dots) do not count, as in Postfix.
bool domain_labels(std::string_view domain, int needed, std::vector<std::string_view>& out) {
    if (needed == 0) return true;
    out = split_tokens(domain, ".");
    return static_cast<int>(out.size()) >= needed;
}

}  // namespace

Status TemplateContext::add(std::string_view format, bool is_query, std::string_view table_name) {
    for (size_t i = 0; i < format.size(); ++i) {
        if (format[i] != '%') continue;
        char c = i + 1 < format.size() ? format[++i] : '\0';
        switch (c) {
            case '%': case 's': case 'S': break;
            case 'u': flags_ |= is_query ? kKeyUser : kValueUser; break;
            case 'd': flags_ |= is_query ? kKeyDomain : kValueDomain; break;
            case 'U': flags_ |= kKeyUser; break;
            case 'D': flags_ |= kKeyDomain; break;
            case '1': case '2': case '3': case '4': case '5':
            case '6': case '7': case '8': case '9':
                // Keys need at least this many domain labels; expand() relies on it.
                nparts_ = std::max(nparts_, c - '0');
                flags_ |= kKeyDomain;
                break;
            default:
                return make_error(strprintf("db_common_parse: %.*s: Invalid %s template: %.*s",
                                            static_cast<int>(table_name.size()), table_name.data(),
                                            is_query ? "query" : "result",
                                            static_cast<int>(format.size()), format.data()));
        }
    }
    return Status::success();
}

bool TemplateContext::expand_query(std::string_view format, std::string_view key,
                                   const Quote& quote, std::string& out) const {
    out.clear();
    if (key.empty()) {
        log::warn("table \"%s\": empty query string -- ignored", spec_.c_str());
        return false;
    }
    AddressParts k = split_address(key);
    if (!parts_ok(k, flags_ & kKeyDomain, flags_ & kKeyUser)) return false;
    std::vector<std::string_view> labels;
    if (!domain_labels(k.domain, nparts_, labels)) return false;
    for (size_t i = 0; i < format.size(); ++i) {
        if (format[i] != '%' || i + 1 >= format.size()) {
            out += format[i];
            continue;
        }
        switch (char c = format[++i]) {
            case '%': out += '%'; break;
            case 's': case 'S': quote(key, out); break;
            case 'u': case 'U': quote(k.user, out); break;
            case 'd': case 'D': quote(k.domain, out); break;
            default:  // '1'..'9': add() accepted nothing else
                quote(labels[labels.size() - static_cast<size_t>(c - '0')], out);
                break;
        }
    }
    return true;
}

bool TemplateContext::expand_result(std::string_view format, std::string_view value,
                                    std::string_view key, std::string& out) const {
    if (value.empty()) {
        log::warn("table \"%s\": empty lookup result for: \"%.*s\" -- ignored", spec_.c_str(),
                  static_cast<int>(key.size()), key.data());
        return false;
    }
    AddressParts v = split_address(value);
    if (!parts_ok(v, flags_ & kValueDomain, flags_ & kValueUser)) return false;
    AddressParts k = split_address(key);
    if (!parts_ok(k, flags_ & kKeyDomain, flags_ & kKeyUser)) {
        // expand_query() filters such keys first; only a caller mixing contexts gets here.
        log::warn("db_common_expand: %s: lookup key '%.*s' skipped after query", spec_.c_str(),
                  static_cast<int>(value.size()), value.data());
        return false;
    }
    std::vector<std::string_view> labels;
    if (!domain_labels(k.domain, nparts_, labels)) return false;
    if (!out.empty()) out += ',';
    for (size_t i = 0; i < format.size(); ++i) {
        if (format[i] != '%' || i + 1 >= format.size()) {
            out += format[i];
            continue;
        }
        switch (char c = format[++i]) {
            case '%': out += '%'; break;
            case 's': out += value; break;
            case 'u': out += v.user; break;
            case 'd': out += v.domain; break;
            case 'S': out += key; break;
            case 'U': out += k.user; break;
            case 'D': out += k.domain; break;
            default: out += labels[labels.size() - static_cast<size_t>(c - '0')]; break;
        }
    }
    return true;
}

std::string legacy_query(std::string_view select_field, std::string_view table,
                         std::string_view where_field, std::string_view additional_conditions) {
    std::string q = "SELECT ";
    q += select_field;
    q += " FROM ";
    q += table;
    q += " WHERE ";
    q += where_field;
    q += "='%s' ";
    q += additional_conditions;
    return q;
}

// ---- domain list ----------------------------------------------------------------------

DomainFilter::~DomainFilter() = default;

Result<DomainFilter> DomainFilter::parse(std::string_view list, std::string_view table_name) {
    DomainFilter f;
    for (std::string_view item : split_outside_braces(list)) {
        Status s = f.add_item(item, table_name, 0);
        if (!s) return make_error(s.error());
    }
    return f;
}

Status DomainFilter::add_item(std::string_view item, std::string_view table_name, int depth) {
    bool negated = false;
    while (!item.empty() && item.front() == '!') {
        negated = !negated;
        item.remove_prefix(1);
    }
    if (item.empty())
        return make_error(strprintf("%.*s: 'domain' list entry is only '!'",
                                    static_cast<int>(table_name.size()), table_name.data()));
    if (item.front() == '/') {
        // A file of patterns; a negation applies to each of them, as in Postfix.
        if (depth > 8)
            return make_error(strprintf("%.*s: 'domain' files nest too deeply at %.*s",
                                        static_cast<int>(table_name.size()), table_name.data(),
                                        static_cast<int>(item.size()), item.data()));
        auto text = read_file(std::string(item));
        if (!text) return make_error(text.error());
        std::string_view rest = *text;
        while (!rest.empty()) {
            size_t nl = rest.find('\n');
            std::string_view line = rest.substr(0, nl);
            rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
            if (trim(line).empty() || trim(line).front() == '#') continue;
            for (std::string_view sub : split_outside_braces(line)) {
                std::string prefixed = negated ? "!" + std::string(sub) : std::string(sub);
                Status s = add_item(prefixed, table_name, depth + 1);
                if (!s) return s;
            }
        }
        return Status::success();
    }
    Pattern p;
    p.negated = negated;
    if (item.find(':') != std::string_view::npos) {
        auto t = open_table(item, kReadOnly | kFoldFix);
        if (!t) return make_error(t.error());
        p.table = std::move(t.value());
    } else {
        p.text = lowercase(item);
    }
    patterns_.push_back(std::move(p));
    return Status::success();
}

DomainFilter::Verdict DomainFilter::check(std::string_view key, std::string& error) const {
    if (patterns_.empty()) return Verdict::Lookup;
    AddressParts a = split_address(key);
    if (!a.has_at || a.user.empty()) return Verdict::Skip;
    std::string domain = lowercase(a.domain);
    for (const Pattern& p : patterns_) {
        bool matched;
        if (p.table) {
            LookupResult r = p.table->lookup(domain);
            if (r.status == LookupResult::Status::Error) {
                error = strprintf("%s 'domain' pattern match failed for '%s': %s",
                                  p.table->spec().c_str(), domain.c_str(), r.error.c_str());
                return Verdict::Error;
            }
            matched = r.found();
        } else {
            matched = p.text == domain;
        }
        if (matched) return p.negated ? Verdict::Skip : Verdict::Lookup;
    }
    return Verdict::Skip;
}

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        int len;
        unsigned cp;
        if (c < 0x80) { ++i; continue; }
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return false;
        if (i + static_cast<size_t>(len) > s.size()) return false;
        for (int j = 1; j < len; ++j) {
            unsigned char cc = static_cast<unsigned char>(s[i + static_cast<size_t>(j)]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += static_cast<size_t>(len);
    }
    return true;
}

}  // namespace postern::table::sql
