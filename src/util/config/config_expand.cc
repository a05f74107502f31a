// $name expansion, following Postfix's mac_parse + mac_expand: the grammar, the
// conditional and relational forms, and the warning texts are Postfix's, so that
// postconf -x and the daemons report bad values the same way.
#include "util/config/config_expand.h"

#include <cctype>
#include <climits>

#include "util/base/strings.h"

namespace postern::config {
namespace {

constexpr int kError = 1;
constexpr int kUndef = 2;
// Postfix's limit; also bounds our stack (each level is a few frames).
constexpr int kMaxNesting = 100;
// Not in Postfix: values that double each other ($a = $b $b, ...) stay within the nesting
// limit yet take exponential time. Bound the work and the result instead of hanging.
constexpr long kMaxExpansions = 20000;
constexpr size_t kMaxResult = 4u << 20;

// Shared by an expansion and the expansions nested in its relational operands, so that
// no combination of references can recurse or work without bound.
struct Budget {
    int depth = 0;
    long expansions = 0;
};
constexpr std::string_view kWhitespace = " \t\r\n";
constexpr std::string_view kOpChars = "<>!=?+-*/~&|%";
// Postfix's own operator list text, quirks included (its string pasting doubles quotes).
constexpr const char* kOpsAny = "\"==\" or \"!=\"\" or \"<\"\" or \"<=\"\" or \">=\"\" or \">\"";

enum class Op { None, Eq, Ne, Lt, Le, Ge, Gt };

Op op_from(std::string_view s) {
    if (s == "==") return Op::Eq;
    if (s == "!=") return Op::Ne;
    if (s == "<") return Op::Lt;
    if (s == "<=") return Op::Le;
    if (s == ">=") return Op::Ge;
    if (s == ">") return Op::Gt;
    return Op::None;
}

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

bool op_holds(Op op, long delta) {
    switch (op) {
        case Op::Eq: return delta == 0;
        case Op::Ne: return delta != 0;
        case Op::Lt: return delta < 0;
        case Op::Le: return delta <= 0;
        case Op::Ge: return delta >= 0;
        case Op::Gt: return delta > 0;
        case Op::None: break;
    }
    return false;
}

std::string first20(std::string_view s) { return std::string(s.substr(0, 20)); }

// Skips whitespace; true (and advances) when a '{' follows.
bool find_left_curly(std::string_view& cp) {
    size_t n = cp.find_first_not_of(kWhitespace);
    if (n == std::string_view::npos || cp[n] != '{') return false;
    cp.remove_prefix(n);
    return true;
}

// One expansion run (one mac_expand() call).
class Expander {
public:
    Expander(const MacroLookup* lookup, bool recurse, bool scan, ExpandOutcome& out,
             std::vector<std::string>* scanned, Budget& budget)
        : lookup_(lookup), recurse_(recurse), scan_(scan), out_(out), scanned_(scanned),
          budget_(budget) {}

    int parse(std::string_view pattern, std::string& result);

private:
    int warn(std::string text) {
        out_.warnings.push_back(std::move(text));
        return status_ |= kError;
    }
    int on_expr(std::string_view buf, std::string& result);
    int relational(std::string_view& cp, std::optional<std::string>& value);
    bool extract_curly(std::string_view& cp, std::string_view& payload);
    std::optional<std::string> look_up(std::string_view name);
    int branches(char ch, std::string_view cp, const std::optional<std::string>& value,
                 std::string& result);

    const MacroLookup* lookup_;
    bool recurse_;
    bool scan_;
    ExpandOutcome& out_;
    std::vector<std::string>* scanned_;
    Budget& budget_;
    int status_ = 0;
};

std::optional<std::string> Expander::look_up(std::string_view name) {
    if (scanned_) scanned_->emplace_back(name);
    if (!lookup_) return std::nullopt;
    return (*lookup_)(name);
}

// Balances {} starting at cp[0] == '{'; leaves cp after the '}' and trailing whitespace.
bool Expander::extract_curly(std::string_view& cp, std::string_view& payload) {
    int level = 1;
    for (size_t i = 1; i < cp.size(); ++i) {
        if (cp[i] == '{') {
            ++level;
        } else if (cp[i] == '}' && --level <= 0) {
            payload = cp.substr(1, i - 1);
            cp.remove_prefix(i + 1);
            size_t n = cp.find_first_not_of(kWhitespace);
            cp.remove_prefix(n == std::string_view::npos ? cp.size() : n);
            return true;
        }
    }
    warn(strprintf("unbalanced {} in attribute expression: \"%s\"", std::string(cp).c_str()));
    return false;
}

int Expander::parse(std::string_view pattern, std::string& result) {
    std::string buf;
    size_t i = 0;
    while (i < pattern.size()) {
        char c = pattern[i];
        if (c != '$') {
            buf += c;
            ++i;
            continue;
        }
        if (i + 1 < pattern.size() && pattern[i + 1] == '$') {  // $$ becomes $
            buf += '$';
            i += 2;
            continue;
        }
        if (!buf.empty()) {
            if (!scan_) result += buf;
            buf.clear();
        }
        ++i;
        std::string_view name;
        if (i < pattern.size() && (pattern[i] == '{' || pattern[i] == '(')) {
            char open = pattern[i], close = open == '{' ? '}' : ')';
            int level = 1;
            size_t e = i + 1;
            for (; e < pattern.size() && level > 0; ++e) {
                if (pattern[e] == open) ++level;
                if (pattern[e] == close) --level;
            }
            if (level > 0) {
                warn(strprintf("truncated macro reference: \"%s\"", std::string(pattern).c_str()));
                return status_;
            }
            name = pattern.substr(i + 1, e - i - 2);
            i = e;
        } else {
            size_t e = i;
            while (e < pattern.size() && is_name_char(pattern[e])) ++e;
            name = pattern.substr(i, e - i);
            i = e;
        }
        if (name.empty()) {
            warn(strprintf("empty macro name: \"%s\"", std::string(pattern).c_str()));
            return status_;
        }
        on_expr(name, result);
    }
    if (!buf.empty() && !(status_ & kError) && !scan_) result += buf;
    return status_;
}

int Expander::relational(std::string_view& cp, std::optional<std::string>& value) {
    std::string_view left, right;
    if (!extract_curly(cp, left)) return status_;
    size_t op_len = cp.find_first_not_of(kOpChars);
    if (op_len == std::string_view::npos) op_len = cp.size();
    std::string_view op_text = cp.substr(0, op_len);
    Op op = op_from(op_text);
    if (op == Op::None)
        return warn(strprintf("%s expected at: \"...%s}>>>%s\"", kOpsAny, std::string(left).c_str(),
                              first20(cp).c_str()));
    cp.remove_prefix(op_len);
    bool level_compare = false;
    if (!cp.empty() && std::isalnum(static_cast<unsigned char>(cp[0]))) {
        size_t n = 1;
        while (n < cp.size() && std::isalnum(static_cast<unsigned char>(cp[n]))) ++n;
        if (cp.substr(0, n) != "level")
            return warn(strprintf("bad operator suffix at: \"...%s>>>%s\"",
                                  std::string(op_text).c_str(), std::string(cp.substr(0, n)).c_str()));
        level_compare = true;
        cp.remove_prefix(n);
    }
    if (!find_left_curly(cp))
        return warn(strprintf("\"{expression}\" expected at: \"...{%s} %s>>>%s\"",
                              std::string(left).c_str(), std::string(op_text).c_str(),
                              first20(cp).c_str()));
    if (!extract_curly(cp, right)) return status_;

    std::string lval, rval;
    Expander sub_left(lookup_, recurse_, scan_, out_, scanned_, budget_);
    status_ |= sub_left.parse(left, lval);
    Expander sub_right(lookup_, recurse_, scan_, out_, scanned_, budget_);
    status_ |= sub_right.parse(right, rval);
    if (status_ & kError) return status_;
    if (scan_) {
        value.reset();
        return 0;
    }
    long delta = 0;
    if (level_compare) {
        auto l = compat_level_from_string(lval), r = compat_level_from_string(rval);
        if (!l) return warn(strprintf("malformed compatibility level syntax: \"%s\"", lval.c_str()));
        if (!r) return warn(strprintf("malformed compatibility level syntax: \"%s\"", rval.c_str()));
        delta = *l - *r;
    } else if (all_digits(lval) && all_digits(rval)) {
        long l = 0, r = 0;
        if (!parse_long(lval, l)) return warn(strprintf("mac_exp_eval: bad conversion: %s", lval.c_str()));
        if (!parse_long(rval, r)) return warn(strprintf("mac_exp_eval: bad conversion: %s", rval.c_str()));
        delta = l < r ? -1 : l > r ? 1 : 0;
    } else {
        int c = lval.compare(rval);
        delta = c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    value = op_holds(op, delta) ? "true" : "";
    return 0;
}

int Expander::branches(char ch, std::string_view cp, const std::optional<std::string>& value,
                       std::string& result) {
    bool non_empty = value && !value->empty();
    if (ch == '?') {
        std::string_view if_true;
        if (find_left_curly(cp)) {
            if (!extract_curly(cp, if_true)) return status_;
        } else {
            if_true = cp;
            cp = {};
        }
        if (non_empty || scan_) status_ |= parse(if_true, result);
        if (cp.empty()) return status_;
        if (cp[0] != ':')
            return warn(strprintf("\":\" expected at: \"...%s}>>>%s\"", std::string(if_true).c_str(),
                                  first20(cp).c_str()));
        cp.remove_prefix(1);
    }
    // ':' on its own, or the second half of '?:'.
    std::string_view if_false;
    if (find_left_curly(cp)) {
        if (!extract_curly(cp, if_false)) return status_;
    } else {
        if_false = cp;
        cp = {};
    }
    if (!non_empty || scan_) status_ |= parse(if_false, result);
    if (!cp.empty())
        return warn(strprintf("unexpected input at: \"...%s}>>>%s\"", std::string(if_false).c_str(),
                              first20(cp).c_str()));
    return status_;
}

int Expander::on_expr(std::string_view buf, std::string& result) {
    if (budget_.depth++ > kMaxNesting)
        warn(strprintf("unreasonable macro call nesting: \"%s\"", std::string(buf).c_str()));
    else if (++budget_.expansions > kMaxExpansions || result.size() > kMaxResult)
        warn(strprintf("unreasonable macro expansion size: \"%s\"", std::string(buf).c_str()));
    if (status_ & kError) return status_;

    std::string_view cp = buf;
    std::optional<std::string> value;
    char ch = 0;
    if (find_left_curly(cp)) {
        if (relational(cp, value) != 0) return status_;
        if (!cp.empty()) {
            ch = cp[0];
            if (ch != '?' && ch != ':')
                return warn(strprintf("\"?\" or \":\" expected at: \"...}>>>%s\"", first20(cp).c_str()));
            cp.remove_prefix(1);
        }
    } else {
        size_t start = cp.find_first_not_of(kWhitespace);
        if (start == std::string_view::npos) start = cp.size();
        size_t i = start;
        for (;; ++i) {
            size_t ws = cp.find_first_not_of(kWhitespace, i);
            if (ws == std::string_view::npos) break;  // end: plain $name
            if (cp[ws] == '?' || cp[ws] == ':') {
                ch = cp[ws];
                break;
            }
            if (!is_name_char(cp[i]))
                return warn(strprintf("attribute name syntax error at: \"...%s>>>%s\"",
                                      std::string(cp.substr(0, i)).c_str(),
                                      first20(cp.substr(i)).c_str()));
        }
        std::string_view name = cp.substr(start, i - start);
        if (ch) cp.remove_prefix(cp.find(ch, i) + 1);
        value = look_up(name);
        if (!ch && !value) {
            status_ |= kUndef;
            if (!scan_) out_.undefined.emplace_back(name);
        }
    }
    if (ch) {
        branches(ch, cp, value, result);
    } else if (value && !value->empty() && !scan_) {
        if (recurse_)
            status_ |= parse(*value, result);
        else
            result += *value;
    }
    --budget_.depth;
    return status_;
}

}  // namespace

ExpandOutcome expand_macros(std::string_view pattern, const MacroLookup& lookup, bool recurse) {
    ExpandOutcome out;
    Budget budget;
    Expander e(&lookup, recurse, false, out, nullptr, budget);
    out.error = (e.parse(pattern, out.text) & kError) != 0;
    return out;
}

std::vector<std::string> scan_macro_names(std::string_view pattern) {
    ExpandOutcome out;
    std::vector<std::string> names;
    Budget budget;
    std::string ignored;
    Expander e(nullptr, false, true, out, &names, budget);
    (void)e.parse(pattern, ignored);
    return names;
}

std::optional<long> compat_level_from_string(std::string_view s) {
    // 10 bits each for minor and patch, the rest for major, as Postfix encodes it.
    constexpr int kMinorShift = 10, kMajorShift = 20;
    long parts[3] = {0, 0, 0};
    size_t n = 0;
    while (true) {
        size_t dot = s.find('.');
        std::string_view field = s.substr(0, dot);
        if (n >= 3 || !all_digits(field) || field.size() > 12) return std::nullopt;
        long v = 0;
        if (!parse_long(field, v)) return std::nullopt;
        parts[n++] = v;
        if (dot == std::string_view::npos) break;
        s.remove_prefix(dot + 1);
    }
    if (parts[0] > (LONG_MAX >> kMajorShift) || parts[1] > 0x3ff || parts[2] > 0x3ff)
        return std::nullopt;
    return (parts[0] << kMajorShift) | (parts[1] << kMinorShift) | parts[2];
}

}  // namespace postern::config
