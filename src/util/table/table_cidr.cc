// cidr: tables (cidr_table(5)): "[!]network[/prefix] result" rules and "if [!]network" ...
// "endif" blocks, first match wins. Patterns and keys are compared in binary, so IPv6
// spelling does not matter; a key of the other address family never matches, negated
// or not, and a key that is not an address matches nothing.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/table/pattern_source.h"
#include "util/table/pattern_tables.h"
#include "util/table/table_types.h"

namespace postern::table {
namespace {

constexpr size_t kNoEndif = static_cast<size_t>(-1);

struct Network {
    int family = AF_INET;
    std::array<unsigned char, 16> net{};
    std::array<unsigned char, 16> mask{};
    size_t bytes = 4;
};

struct CidrRule {
    enum class Op { Match, If, Endif };
    Op op = Op::Match;
    int lineno = 0;
    Network network;
    bool match = true;  // false for "!pattern"
    std::string value;
    size_t endif = kNoEndif;
};

void fill_mask(Network& n, unsigned prefix) {
    n.mask.fill(0);
    for (size_t i = 0; i < n.bytes; ++i) {
        unsigned bits = prefix >= 8 ? 8 : prefix;
        n.mask[i] = static_cast<unsigned char>(0xff00u >> bits);
        prefix -= bits;
    }
}

bool parse_address(int family, const std::string& text, unsigned char* out) {
    return inet_pton(family, text.c_str(), out) == 1;
}

// Postfix's cidr_match_parse(): "addr", "addr/len", "[addr]", "[addr]/len", "[addr/len]".
// Returns the reason on failure, in Postfix's words.
std::string parse_network(std::string_view pattern, Network& n) {
    std::string addr(pattern), mask;
    bool has_mask = false;
    if (!pattern.empty() && pattern.front() == '[') {
        std::string_view inner = pattern.substr(1);
        size_t close = inner.find(']');
        if (close == std::string_view::npos)
            return strprintf("missing ']' character after \"[%s\"", std::string(inner).c_str());
        std::string_view after = inner.substr(close + 1);
        addr.assign(inner.substr(0, close));
        if (!after.empty() && after.front() != '/')
            return strprintf("garbage after \"[%s]\"", addr.c_str());
        if (!after.empty()) addr += after;
    }
    size_t slash = addr.find('/');
    if (slash != std::string::npos) {
        mask = addr.substr(slash + 1);
        addr.resize(slash);
        has_mask = true;
    }
    n.family = addr.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    n.bytes = n.family == AF_INET6 ? 16 : 4;
    unsigned bits = static_cast<unsigned>(n.bytes * 8);
    n.net.fill(0);
    if (!has_mask) {
        if (!parse_address(n.family, addr, n.net.data()))
            return strprintf("bad address pattern: \"%s\"", addr.c_str());
        fill_mask(n, bits);
        return {};
    }
    bool digits = !mask.empty() && mask.find_first_not_of("0123456789") == std::string::npos;
    if (!digits) return strprintf("bad mask value in \"%s/%s\"", addr.c_str(), mask.c_str());
    size_t first = mask.find_first_not_of('0');
    std::string_view significant = first == std::string::npos ? "0" : std::string_view(mask).substr(first);
    unsigned prefix = significant.size() > 3 ? bits + 1 : static_cast<unsigned>(std::stoul(std::string(significant)));
    if (prefix > bits) return strprintf("bad mask length in \"%s/%s\"", addr.c_str(), mask.c_str());
    if (!parse_address(n.family, addr, n.net.data()))
        return strprintf("bad network value in \"%s/%s\"", addr.c_str(), mask.c_str());
    fill_mask(n, prefix);
    for (size_t i = 0; i < n.bytes; ++i) {
        if ((n.net[i] & ~n.mask[i]) == 0) continue;
        for (size_t j = 0; j < n.bytes; ++j) n.net[j] &= n.mask[j];
        char buf[INET6_ADDRSTRLEN] = "";
        inet_ntop(n.family, n.net.data(), buf, sizeof buf);
        return strprintf("non-null host address bits in \"%s/%s\", perhaps you should use \"%s/%u\" instead",
                         addr.c_str(), mask.c_str(), buf, prefix);
    }
    return {};
}

// "[!...]pattern": negation marks and blanks before the pattern, as Postfix allows.
std::string_view take_negation(std::string_view p, bool& match) {
    match = true;
    while (!p.empty() && (p.front() == '!' || is_space(p.front()))) {
        if (p.front() == '!') match = !match;
        p.remove_prefix(1);
    }
    return p;
}

class CidrTable final : public Table {
public:
    CidrTable(std::string spec, unsigned flags, std::vector<CidrRule> rules)
        : Table(std::move(spec), flags), rules_(std::move(rules)) {}

    bool is_pattern() const override { return true; }

    LookupResult lookup(std::string_view key) override {
        if (!utf8_key_acceptable(*this, key)) return LookupResult::miss();
        return utf8_checked_result(*this, key, match_key(key));
    }

private:
    LookupResult match_key(std::string_view key) const {
        std::string k(key.substr(0, key.find('\0')));
        int family = k.find(':') != std::string::npos ? AF_INET6 : AF_INET;
        std::array<unsigned char, 16> addr{};
        if (!parse_address(family, k, addr.data())) return LookupResult::miss();
        for (size_t i = 0; i < rules_.size(); ++i) {
            const CidrRule& r = rules_[i];
            if (r.op == CidrRule::Op::Endif) continue;
            bool fires = r.network.family == family && matches(r.network, addr) == r.match;
            if (r.op == CidrRule::Op::Match) {
                if (fires) return LookupResult::hit(r.value);
                continue;
            }
            if (fires) continue;
            if (r.endif == kNoEndif) return LookupResult::miss();
            i = r.endif;
        }
        return LookupResult::miss();
    }

    static bool matches(const Network& n, const std::array<unsigned char, 16>& addr) {
        for (size_t i = 0; i < n.bytes; ++i)
            if ((addr[i] & n.mask[i]) != n.net[i]) return false;
        return true;
    }

    std::vector<CidrRule> rules_;
};

class CidrParser {
public:
    explicit CidrParser(std::string_view name) : name_(name) {}

    void add_line(int lineno, std::string_view line) {
        line = line.substr(0, line.find('\0'));
        CidrRule rule;
        rule.lineno = lineno;
        std::string why = parse_rule(line, rule);
        if (!why.empty()) {
            log::warn("cidr map %s, line %d: %s: skipping this rule", name_.c_str(), lineno,
                      why.c_str());
            return;
        }
        if (rule.op == CidrRule::Op::If) open_ifs_.push_back(rules_.size());
        if (rule.op == CidrRule::Op::Endif) {
            rules_[open_ifs_.back()].endif = rules_.size();
            open_ifs_.pop_back();
        }
        rules_.push_back(std::move(rule));
    }

    std::vector<CidrRule> finish() {
        while (!open_ifs_.empty()) {
            log::warn("cidr map %s, line %d: IF has no matching ENDIF", name_.c_str(),
                      rules_[open_ifs_.back()].lineno);
            open_ifs_.pop_back();
        }
        return std::move(rules_);
    }

private:
    std::string parse_rule(std::string_view line, CidrRule& rule) {
        if (starts_with_keyword(line, "endif")) {
            if (!trim(line.substr(5)).empty()) return "garbage after ENDIF";
            if (open_ifs_.empty()) return "ENDIF without IF";
            rule.op = CidrRule::Op::Endif;
            return {};
        }
        if (starts_with_keyword(line, "if")) {
            std::string_view p = trim(take_negation(line.substr(2), rule.match));
            if (p.empty()) return "no address pattern";
            rule.op = CidrRule::Op::If;
            return parse_network(p, rule.network);
        }
        std::string_view p = take_negation(line, rule.match);
        size_t end = 0;
        while (end < p.size() && !is_space(p[end])) ++end;
        std::string_view pattern = p.substr(0, end);
        std::string_view value = trim_trailing_blanks(trim_left(p.substr(end)));
        if (pattern.empty()) return "no address pattern";
        std::string why = parse_network(pattern, rule.network);
        if (!why.empty()) return why;
        if (value.empty()) return "no lookup result";
        rule.value.assign(value);
        return {};
    }

    std::string name_;
    std::vector<CidrRule> rules_;
    std::vector<size_t> open_ifs_;
};

std::unique_ptr<Table> build(std::string spec, std::string_view source_name,
                             std::string_view text, unsigned flags) {
    CidrParser parser(source_name);
    for (const SourceLine& line : logical_lines(text, source_name))
        parser.add_line(line.lineno, line.text);
    return std::make_unique<CidrTable>(std::move(spec), flags, parser.finish());
}

}  // namespace

TableResult open_cidr_table(std::string_view spec, std::string_view name, unsigned flags) {
    std::string n(name);
    if (flags & kCreate)
        return make_error(strprintf("cidr:%s map requires O_RDONLY access mode", n.c_str()));
    auto text = load_pattern_source("cidr", name);
    if (!text) return make_error(text.error());
    return build(std::string(spec), name, *text, flags);
}

std::unique_ptr<Table> cidr_table_from_text(std::string_view source_name, std::string_view text,
                                            unsigned flags) {
    return build("cidr:" + std::string(source_name), source_name, text, flags);
}

}  // namespace postern::table
