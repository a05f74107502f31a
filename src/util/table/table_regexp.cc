// regexp: tables (regexp_table(5)): POSIX regcomp()/regexec(), extended syntax and
// case-insensitive unless the rule's flags toggle them (i, x, m).
#include <regex.h>

#include "util/log/log.h"
#include "util/table/pattern_tables.h"
#include "util/table/regex_rules.h"

namespace postern::table {
namespace {

std::string regex_error_text(int err, const regex_t* re) {
    char buf[256];
    regerror(err, re, buf, sizeof buf);
    return buf;
}

// Owns one regex_t; regfree() exactly once.
class PosixRegex final : public CompiledRegex {
public:
    explicit PosixRegex(std::string where) : where_(std::move(where)) {}
    ~PosixRegex() override {
        if (compiled_) regfree(&re_);
    }
    PosixRegex(const PosixRegex&) = delete;
    PosixRegex& operator=(const PosixRegex&) = delete;

    // Returns regcomp's error code (0 on success).
    int compile(const std::string& expr, int options) {
        int err = regcomp(&re_, expr.c_str(), options);
        if (err == 0) compiled_ = true;
        return err;
    }
    const regex_t* get() const { return &re_; }

    size_t group_count() const override { return re_.re_nsub; }

    int match(const std::string& subject,
              std::vector<std::pair<size_t, size_t>>* groups) override {
        std::vector<regmatch_t> m;
        if (groups) m.resize(re_.re_nsub + 1);
        int err = regexec(&re_, subject.c_str(), m.size(), m.empty() ? nullptr : m.data(), 0);
        if (err == REG_NOMATCH) return 0;
        if (err != 0) {
            log::warn("%s: %s", where_.c_str(), regex_error_text(err, &re_).c_str());
            return -1;
        }
        if (groups) {
            groups->clear();
            for (const regmatch_t& g : m) {
                if (g.rm_so < 0)
                    groups->emplace_back(std::string::npos, std::string::npos);
                else
                    groups->emplace_back(static_cast<size_t>(g.rm_so),
                                         static_cast<size_t>(g.rm_eo));
            }
        }
        return 1;
    }

private:
    std::string where_;
    regex_t re_{};
    bool compiled_ = false;
};

const RegexSyntax& posix_syntax() {
    static const RegexSyntax syntax = [] {
        RegexSyntax s;
        s.kind = "regexp";
        s.bang_ends_flags = true;
        s.backslash_at_end_closes = true;
        s.hyphen_range = true;
        s.default_options = REG_EXTENDED | REG_ICASE;
        s.apply_flag = [](char flag, int& options, const std::string&) {
            switch (flag) {
                case 'i': options ^= REG_ICASE; return true;
                case 'm': options ^= REG_NEWLINE; return true;
                case 'x': options ^= REG_EXTENDED; return true;
                default: return false;
            }
        };
        s.compile = [](const std::string& expr, int options, bool want_groups,
                       const std::string& where) -> std::unique_ptr<CompiledRegex> {
            auto re = std::make_unique<PosixRegex>(where);
            int err = re->compile(expr, want_groups ? options : options | REG_NOSUB);
            if (err != 0) {
                log::warn("%s: %s", where.c_str(), regex_error_text(err, re->get()).c_str());
                return nullptr;
            }
            return re;
        };
        return s;
    }();
    return syntax;
}

}  // namespace

TableResult open_regexp_table(std::string_view spec, std::string_view name, unsigned flags) {
    return open_regex_table(posix_syntax(), spec, name, flags);
}

std::unique_ptr<Table> regexp_table_from_text(std::string_view source_name, std::string_view text,
                                              unsigned flags) {
    return regex_table_from_text(posix_syntax(), std::string("regexp:") + std::string(source_name),
                                 source_name, text, flags);
}

}  // namespace postern::table
