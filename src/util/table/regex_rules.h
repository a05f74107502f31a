// The rule program shared by regexp: and pcre: tables. Both read the same format
// (regexp_table(5), pcre_table(5)):
//
//   [!]/pattern/flags result        first matching rule wins; $1..$N from the match
//   /p1/!/p2/ result                (regexp only) p1 matches and p2 does not
//   if [!]/pattern/flags ... endif  nested blocks, entered when the pattern (mis)matches
//
// and differ only in the engine (POSIX regcomp vs pcre2), the flag letters and a few
// message wordings, which a RegexSyntax supplies. Rule errors are Postfix's warnings and
// skip the rule; the table still opens.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/table/table_types.h"

namespace postern::table {

// One compiled expression. match() returns 1 on a match, 0 on no match, and -1 on an
// engine error, which it has already logged (Postfix treats that as "no match" either way).
class CompiledRegex {
public:
    virtual ~CompiledRegex() = default;
    // Number of capturing groups in the expression.
    virtual size_t group_count() const = 0;
    // When `groups` is not null it receives one (start, end) per group 0..group_count(),
    // npos for a group that did not take part.
    virtual int match(const std::string& subject,
                      std::vector<std::pair<size_t, size_t>>* groups) = 0;
};

struct RegexSyntax {
    std::string_view kind;           // "regexp" or "pcre": the warnings' "%s map"
    bool bang_ends_flags = false;    // regexp: '!' after the flags starts a second pattern
    bool backslash_at_end_closes = false;  // regexp: "/abc\" ends the pattern (Postfix quirk)
    bool hyphen_range = false;       // regexp says "out-of-range replacement index"
    int default_options = 0;
    // Toggles option bits for one flag letter; false for an unknown letter (after logging
    // anything the engine wants to say, e.g. pcre's "ignoring obsolete regexp option").
    std::function<bool(char flag, int& options, const std::string& where)> apply_flag;
    // Compiles; logs Postfix's warning under `where` and returns null on error.
    std::function<std::unique_ptr<CompiledRegex>(const std::string& expr, int options,
                                                 bool want_groups, const std::string& where)>
        compile;
};

// Builds a table from rule text already in memory. `source_name` is what the warnings
// call the map (the file name, or the inline "{...}" text).
std::unique_ptr<Table> regex_table_from_text(const RegexSyntax& syntax, std::string_view spec,
                                             std::string_view source_name,
                                             std::string_view text, unsigned flags);

// open_regexp_table/open_pcre_table: read-only check, source loading, then the above.
TableResult open_regex_table(const RegexSyntax& syntax, std::string_view spec,
                             std::string_view name, unsigned flags);

}  // namespace postern::table
