#include "util/table/regex_rules.h"

#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/table/pattern_source.h"

namespace postern::table {
namespace {

constexpr size_t kNoEndif = static_cast<size_t>(-1);

struct Rule {
    enum class Op { Match, If, Endif };
    Op op = Op::Match;
    int lineno = 0;
    std::unique_ptr<CompiledRegex> first;
    bool first_match = true;
    std::unique_ptr<CompiledRegex> second;  // regexp's /p1/!/p2/ form
    bool second_match = true;
    Replacement replacement;
    size_t endif = kNoEndif;  // for If: index of its endif rule
};

// One "[!...]<delim>expr<delim>flags" as Postfix's dict_*_get_pat() reads it.
struct PatternText {
    std::string expr;
    int options = 0;
    bool match = true;
};

void skip_spaces(std::string_view& p) {
    while (!p.empty() && is_space(p.front())) p.remove_prefix(1);
}

bool take_pattern(const RegexSyntax& syn, std::string_view& p, const std::string& where,
                  PatternText& out) {
    out.match = true;
    while (!p.empty() && (p.front() == '!' || is_space(p.front()))) {
        if (p.front() == '!') out.match = !out.match;
        p.remove_prefix(1);
    }
    if (p.empty()) {
        log::warn("%s: no regexp: skipping this rule", where.c_str());
        return false;
    }
    char delim = p.front();
    p.remove_prefix(1);
    size_t i = 0;
    bool closed = false;
    for (; i < p.size(); ++i) {
        if (p[i] == '\\') {
            if (i + 1 < p.size()) {
                ++i;
            } else {
                closed = syn.backslash_at_end_closes;
                break;
            }
        } else if (p[i] == delim) {
            closed = true;
            break;
        }
    }
    if (!closed) {
        log::warn("%s: no closing regexp delimiter \"%c\": %s", where.c_str(), delim,
                  syn.kind == "pcre" ? "ignoring this rule" : "skipping this rule");
        return false;
    }
    out.expr.assign(p.substr(0, i));
    p.remove_prefix(i + 1);
    out.options = syn.default_options;
    while (!p.empty() && !is_space(p.front()) && !(syn.bang_ends_flags && p.front() == '!')) {
        if (!syn.apply_flag(p.front(), out.options, where)) {
            log::warn("%s: unknown regexp option \"%c\": skipping this rule", where.c_str(),
                      p.front());
            return false;
        }
        p.remove_prefix(1);
    }
    return true;
}

// Evaluates one expression with its negation: Postfix counts an engine error as "no
// match" for negated expressions too.
bool fires(CompiledRegex& re, bool want_match, const std::string& subject,
           std::vector<std::pair<size_t, size_t>>* groups) {
    int rc = re.match(subject, groups);
    if (rc < 0) return false;
    return (rc == 1) == want_match;
}

class RegexTable final : public Table {
public:
    RegexTable(std::string spec, unsigned flags, std::vector<Rule> rules)
        : Table(std::move(spec), flags), rules_(std::move(rules)) {}

    bool is_pattern() const override { return true; }

    LookupResult lookup(std::string_view key) override {
        if (!utf8_key_acceptable(*this, key)) return LookupResult::miss();
        return utf8_checked_result(*this, key, match(key));
    }

private:
    LookupResult match(std::string_view key) {
        // Keys are C strings in Postfix: a NUL ends the key.
        std::string subject(key.substr(0, key.find('\0')));
        if (flags() & kFoldMul) subject = lowercase(subject);
        std::vector<std::pair<size_t, size_t>> groups;
        for (size_t i = 0; i < rules_.size(); ++i) {
            Rule& r = rules_[i];
            if (r.op == Rule::Op::Endif) continue;
            if (r.op == Rule::Op::If) {
                if (fires(*r.first, r.first_match, subject, nullptr)) continue;
                if (r.endif == kNoEndif) return LookupResult::miss();
                i = r.endif;
                continue;
            }
            bool want = r.replacement.max_index() > 0;
            if (!fires(*r.first, r.first_match, subject, want ? &groups : nullptr)) continue;
            if (r.second && !fires(*r.second, r.second_match, subject, nullptr)) continue;
            return LookupResult::hit(r.replacement.expand([&](size_t n) -> std::string_view {
                if (n >= groups.size() || groups[n].first == std::string::npos) return {};
                return std::string_view(subject).substr(groups[n].first,
                                                        groups[n].second - groups[n].first);
            }));
        }
        return LookupResult::miss();
    }

    std::vector<Rule> rules_;
};

class RuleParser {
public:
    RuleParser(const RegexSyntax& syn, std::string_view source_name, unsigned flags)
        : syn_(syn), name_(source_name), flags_(flags) {}

    void add_line(int lineno, std::string_view line) {
        where_ = strprintf("%.*s map %.*s, line %d", static_cast<int>(syn_.kind.size()),
                           syn_.kind.data(), static_cast<int>(name_.size()), name_.data(), lineno);
        line = trim_trailing_blanks(line.substr(0, line.find('\0')));
        if (line.empty()) return;
        Rule rule;
        rule.lineno = lineno;
        bool ok;
        if (!is_alnum(line.front()))
            ok = parse_match(line, rule);
        else if (starts_with_keyword(line, "if"))
            ok = parse_if(line.substr(2), rule);
        else if (starts_with_keyword(line, "endif"))
            ok = parse_endif(line.substr(5), rule);
        else {
            log::warn("%s: ignoring unrecognized request", where_.c_str());
            ok = false;
        }
        if (!ok) return;
        if (rule.op == Rule::Op::If) open_ifs_.push_back(rules_.size());
        if (rule.op == Rule::Op::Endif) {
            rules_[open_ifs_.back()].endif = rules_.size();
            open_ifs_.pop_back();
        }
        rules_.push_back(std::move(rule));
    }

    std::vector<Rule> finish() {
        std::string name(name_);
        std::string kind(syn_.kind);
        while (!open_ifs_.empty()) {
            log::warn("%s map %s, line %d: IF has no matching ENDIF", kind.c_str(), name.c_str(),
                      rules_[open_ifs_.back()].lineno);
            open_ifs_.pop_back();
        }
        return std::move(rules_);
    }

private:
    bool parse_match(std::string_view p, Rule& rule) {
        PatternText first, second;
        bool has_second = false;
        if (!take_pattern(syn_, p, where_, first)) return false;
        if (syn_.bang_ends_flags && !p.empty() && p.front() == '!') {
            if (!take_pattern(syn_, p, where_, second)) return false;
            has_second = true;
        }
        skip_spaces(p);
        if (p.empty())
            log::warn("%s: no replacement text: using empty string", where_.c_str());
        if (flags_ & kSrcRhsIsFile) {
            // postmap -F on a pattern table: Postfix base64-encodes the named file.
            log::warn("%s: the -F option is not supported for %.*s tables: skipping this rule",
                      where_.c_str(), static_cast<int>(syn_.kind.size()), syn_.kind.data());
            return false;
        }
        if (!rule.replacement.parse(p, where_, syn_.hyphen_range)) {
            log::warn("%s: bad replacement syntax: skipping this rule", where_.c_str());
            return false;
        }
        size_t max_sub = rule.replacement.max_index();
        if (max_sub > 0 && !first.match) {
            log::warn("%s: $number found in negative match replacement text: skipping this rule",
                      where_.c_str());
            return false;
        }
        rule.first = syn_.compile(first.expr, first.options, max_sub > 0, where_);
        if (!rule.first) return false;
        if (max_sub > rule.first->group_count()) {
            log::warn("%s: out of range replacement index \"%d\": skipping this rule",
                      where_.c_str(), static_cast<int>(max_sub));
            return false;
        }
        rule.first_match = first.match;
        if (has_second) {
            rule.second = syn_.compile(second.expr, second.options, false, where_);
            if (!rule.second) return false;
            rule.second_match = second.match;
        }
        rule.op = Rule::Op::Match;
        return true;
    }

    bool parse_if(std::string_view p, Rule& rule) {
        PatternText pat;
        skip_spaces(p);
        if (!take_pattern(syn_, p, where_, pat)) return false;
        skip_spaces(p);
        if (!p.empty()) {
            std::string extra(p);
            log::warn("%s: ignoring extra text after IF statement: \"%s\"", where_.c_str(),
                      extra.c_str());
            log::warn("%s: do not prepend whitespace to statements between IF and ENDIF",
                      where_.c_str());
        }
        rule.first = syn_.compile(pat.expr, pat.options, false, where_);
        if (!rule.first) return false;
        rule.first_match = pat.match;
        rule.op = Rule::Op::If;
        return true;
    }

    bool parse_endif(std::string_view p, Rule& rule) {
        if (open_ifs_.empty()) {
            log::warn("%s: ignoring ENDIF without matching IF", where_.c_str());
            return false;
        }
        skip_spaces(p);
        if (!p.empty()) log::warn("%s: ignoring extra text after ENDIF", where_.c_str());
        rule.op = Rule::Op::Endif;
        return true;
    }

    const RegexSyntax& syn_;
    std::string_view name_;
    unsigned flags_;
    std::string where_;
    std::vector<Rule> rules_;
    std::vector<size_t> open_ifs_;
};

}  // namespace

std::unique_ptr<Table> regex_table_from_text(const RegexSyntax& syntax, std::string_view spec,
                                             std::string_view source_name,
                                             std::string_view text, unsigned flags) {
    RuleParser parser(syntax, source_name, flags);
    for (const SourceLine& line : logical_lines(text, source_name))
        parser.add_line(line.lineno, line.text);
    return std::make_unique<RegexTable>(std::string(spec), flags, parser.finish());
}

TableResult open_regex_table(const RegexSyntax& syntax, std::string_view spec,
                             std::string_view name, unsigned flags) {
    std::string kind(syntax.kind), n(name);
    if (flags & kCreate)
        return make_error(strprintf("%s:%s map requires O_RDONLY access mode", kind.c_str(),
                                    n.c_str()));
    auto text = load_pattern_source(syntax.kind, name);
    if (!text) return make_error(text.error());
    return regex_table_from_text(syntax, spec, name, *text, flags);
}

}  // namespace postern::table
