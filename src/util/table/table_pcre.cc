// pcre: tables (pcre_table(5)) on libpcre2-8. Default options are Postfix's:
// case-insensitive and DOTALL; the flags i m s x A E U toggle pcre2 options, X is
// accepted with a warning (PCRE2 has no EXTRA option), as Postfix 3.7 built with pcre2.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "util/log/log.h"
#include "util/table/pattern_tables.h"
#include "util/table/regex_rules.h"

namespace postern::table {
namespace {

std::string pcre_error_text(int code) {
    PCRE2_UCHAR buf[256];
    int n = pcre2_get_error_message(code, buf, sizeof buf);
    if (n < 0) return "unexpected pcre2 error code " + std::to_string(code);
    return std::string(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

struct CodeFree {
    void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataFree {
    void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

class Pcre2Regex final : public CompiledRegex {
public:
    Pcre2Regex(pcre2_code* code, pcre2_match_data* data, std::string where)
        : code_(code), data_(data), where_(std::move(where)) {
        uint32_t n = 0;
        pcre2_pattern_info(code_.get(), PCRE2_INFO_CAPTURECOUNT, &n);
        groups_ = n;
    }

    size_t group_count() const override { return groups_; }

    int match(const std::string& subject,
              std::vector<std::pair<size_t, size_t>>* groups) override {
        int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(subject.data()),
                             subject.size(), 0, 0, data_.get(), nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc <= 0) {
            log::warn("%s: %s", where_.c_str(), pcre_error_text(rc).c_str());
            return -1;
        }
        if (groups) {
            groups->clear();
            PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data_.get());
            uint32_t pairs = pcre2_get_ovector_count(data_.get());
            for (uint32_t i = 0; i < pairs && i <= groups_; ++i) {
                // Groups past the last one that matched hold leftovers; rc says how many count.
                if (static_cast<int>(i) >= rc || ov[2 * i] == PCRE2_UNSET || ov[2 * i + 1] < ov[2 * i])
                    groups->emplace_back(std::string::npos, std::string::npos);
                else
                    groups->emplace_back(ov[2 * i], ov[2 * i + 1]);
            }
        }
        return 1;
    }

private:
    std::unique_ptr<pcre2_code, CodeFree> code_;
    std::unique_ptr<pcre2_match_data, MatchDataFree> data_;
    std::string where_;
    size_t groups_ = 0;
};

bool apply_pcre_flag(char flag, int& options, const std::string& where) {
    uint32_t bit = 0;
    switch (flag) {
        case 'i': bit = PCRE2_CASELESS; break;
        case 'm': bit = PCRE2_MULTILINE; break;
        case 's': bit = PCRE2_DOTALL; break;
        case 'x': bit = PCRE2_EXTENDED; break;
        case 'A': bit = PCRE2_ANCHORED; break;
        case 'E': bit = PCRE2_DOLLAR_ENDONLY; break;
        case 'U': bit = PCRE2_UNGREEDY; break;
        case 'X':
            log::warn("%s: ignoring obsolete regexp option \"%c\"", where.c_str(), flag);
            return true;
        default: return false;
    }
    options = static_cast<int>(static_cast<uint32_t>(options) ^ bit);
    return true;
}

std::unique_ptr<CompiledRegex> compile_pcre(const std::string& expr, int options, bool,
                                            const std::string& where) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    // Postfix hands pcre2 a C string: the expression ends at a NUL.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(expr.c_str()),
                                     PCRE2_ZERO_TERMINATED, static_cast<uint32_t>(options), &err,
                                     &offset, nullptr);
    if (!code) {
        log::warn("%s: error in regex at offset %lu: %s", where.c_str(),
                  static_cast<unsigned long>(offset), pcre_error_text(err).c_str());
        return nullptr;
    }
    pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
    if (!data) {
        pcre2_code_free(code);
        log::warn("%s: out of memory in pcre2_match_data_create_from_pattern()", where.c_str());
        return nullptr;
    }
    return std::make_unique<Pcre2Regex>(code, data, where);
}

const RegexSyntax& pcre_syntax() {
    static const RegexSyntax syntax = [] {
        RegexSyntax s;
        s.kind = "pcre";
        s.default_options = static_cast<int>(PCRE2_CASELESS | PCRE2_DOTALL);
        s.apply_flag = apply_pcre_flag;
        s.compile = compile_pcre;
        return s;
    }();
    return syntax;
}

}  // namespace

TableResult open_pcre_table(std::string_view spec, std::string_view name, unsigned flags) {
    return open_regex_table(pcre_syntax(), spec, name, flags);
}

std::unique_ptr<Table> pcre_table_from_text(std::string_view source_name, std::string_view text,
                                            unsigned flags) {
    return regex_table_from_text(pcre_syntax(), std::string("pcre:") + std::string(source_name),
                                 source_name, text, flags);
}

}  // namespace postern::table
