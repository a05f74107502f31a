// The $name expansion engine behind Config::expand (postconf(5), Postfix's mac_expand):
// $name, ${name}, $(name), ${name?text}, ${name:text}, ${name?{a}:{b}},
// ${{a} op {b} ? {x} : {y}} with ==, != , <, <=, >, >= and the "level" suffix that
// compares compatibility levels (3.6 < 3.10), and $$ for a literal '$'.
//
// It knows nothing about main.cf: values come from a lookup callback, so the same engine
// serves Config, postconf -x and the scan for referenced names (unused parameters).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::config {

// Returns the raw value of `name`, or nullopt when it is undefined.
using MacroLookup = std::function<std::optional<std::string>(std::string_view name)>;

struct ExpandOutcome {
    std::string text;
    // A syntax error or runaway recursion; the warnings say which, worded as Postfix's
    // ("truncated macro reference: \"${foo\"", "unreasonable macro call nesting: \"a\"").
    bool error = false;
    std::vector<std::string> warnings;
    // Names that were expanded but undefined (postconf warns "undefined parameter").
    std::vector<std::string> undefined;
};

// Expands `pattern`. With `recurse`, looked-up values are expanded in turn (main.cf
// semantics); without it they are inserted as they are.
ExpandOutcome expand_macros(std::string_view pattern, const MacroLookup& lookup,
                            bool recurse = true);

// Every name `pattern` refers to, in every branch of every conditional (Postfix's
// MAC_EXP_FLAG_SCAN): nothing is looked up or expanded. Syntax errors end the scan.
std::vector<std::string> scan_macro_names(std::string_view pattern);

// Compatibility level "major[.minor[.patch]]" as one comparable number; nullopt when
// malformed (Postfix: "malformed compatibility level syntax").
std::optional<long> compat_level_from_string(std::string_view s);

}  // namespace postern::config
