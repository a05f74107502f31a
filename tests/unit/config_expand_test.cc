#include <catch2/catch.hpp>

#include <map>

#include "util/config/config_expand.h"

using namespace postern::config;

namespace {

struct Table {
    std::map<std::string, std::string, std::less<>> values;
    MacroLookup lookup() const {
        return [this](std::string_view n) -> std::optional<std::string> {
            auto it = values.find(n);
            if (it == values.end()) return std::nullopt;
            return it->second;
        };
    }
    ExpandOutcome expand(std::string_view s, bool recurse = true) const {
        return expand_macros(s, lookup(), recurse);
    }
};

}  // namespace

TEST_CASE("expansion substitutes $name, ${name} and $(name) recursively") {
    Table t{{{"a", "x$b"}, {"b", "y"}, {"c", "${a}-$(b)"}}};
    auto r = t.expand("<$a> <${b}> <$(c)>");
    CHECK_FALSE(r.error);
    CHECK(r.text == "<xy> <y> <xy-y>");
    CHECK(t.expand("$a", false).text == "x$b");
}

TEST_CASE("expansion turns $$ into a literal dollar and stops a name at a non-name char") {
    Table t{{{"a", "A"}}};
    CHECK(t.expand("$$a $a.b $a-$$").text == "$a A.b A-$");
}

TEST_CASE("undefined names expand to empty and are reported") {
    Table t;
    auto r = t.expand("x${nosuch}y");
    CHECK_FALSE(r.error);
    CHECK(r.text == "xy");
    REQUIRE(r.undefined.size() == 1);
    CHECK(r.undefined[0] == "nosuch");
}

TEST_CASE("conditional forms ?, : and ?{}:{} follow the value being non-empty") {
    Table t{{{"set", "1"}, {"empty", ""}}};
    CHECK(t.expand("${set?yes}").text == "yes");
    CHECK(t.expand("${empty?yes}").text == "");
    CHECK(t.expand("${unset?yes}").text == "");
    CHECK(t.expand("${set:no}").text == "");
    CHECK(t.expand("${empty:no}").text == "no");
    CHECK(t.expand("${unset:no}").text == "no");
    CHECK(t.expand("${set?{a b}:{c}}").text == "a b");
    CHECK(t.expand("${empty ? {a} : {c d}}").text == "c d");
    CHECK(t.expand("${set?{$set}}").text == "1");
    CHECK(t.expand("${set:{x}}").text == "");
    // Postfix 2.x text operands keep '?', ':' and braces as they are.
    CHECK(t.expand("${set??foo:{b}ar}").text == "?foo:{b}ar");
    CHECK(t.expand("${set?{a}:b c}").text == "a");
    CHECK(t.expand("${unset?{a}:b c}").text == "b c");
}

TEST_CASE("relational expressions compare strings, numbers and compatibility levels") {
    Table t{{{"compatibility_level", "0"}, {"x", "dane"}}};
    CHECK(t.expand("${{$compatibility_level} <level {2} ? {subnet} : {host}}").text == "subnet");
    t.values["compatibility_level"] = "3.6";
    CHECK(t.expand("${{$compatibility_level} <level {2} ? {subnet} : {host}}").text == "host");
    CHECK(t.expand("${{3.6} <level {3.10} ? {lt}:{ge}}").text == "lt");
    CHECK(t.expand("${{3.6} >=level {3.6.0} ? {ge}:{lt}}").text == "ge");
    CHECK(t.expand("${{3.6} >level {3.5.9} ? {gt}:{le}}").text == "gt");
    CHECK(t.expand("${{2} <=level {1} ? {le}:{gt}}").text == "gt");
    CHECK(t.expand("${{$x} == {dane} ? {dane} : {may}}").text == "dane");
    CHECK(t.expand("${{$x} != {dane} ? {dane} : {may}}").text == "may");
    CHECK(t.expand("${{abc} == {abc}}").text == "true");
    CHECK(t.expand("${{abc} == {abd}}").text == "");
    // Numbers compare as numbers (10 > 9), other text as strings ("10" < "9").
    CHECK(t.expand("${{10} < {9}?{lt}:{ge}}").text == "ge");
    CHECK(t.expand("${{10} < {9x}?{lt}:{ge}}").text == "lt");
}

TEST_CASE("expansion syntax errors are worded as Postfix's") {
    Table t{{{"a", "A"}}};
    auto check = [&](std::string_view in, std::string_view warning) {
        auto r = t.expand(in);
        CHECK(r.error);
        REQUIRE_FALSE(r.warnings.empty());
        CHECK(r.warnings[0] == warning);
    };
    check("${foo", "truncated macro reference: \"${foo\"");
    check("$ x", "empty macro name: \"$ x\"");
    check("${a b}", "attribute name syntax error at: \"...a>>> b\"");
    check("${{x}<>{y}}",
          "\"==\" or \"!=\"\" or \"<\"\" or \"<=\"\" or \">=\"\" or \">\" expected at: \"...x}>>><>{y}\"");
    check("${{x}== y}", "\"{expression}\" expected at: \"...{x} ==>>> y\"");
    check("${{x}==y}", "bad operator suffix at: \"...==>>>y\"");
    check("${{x}=={y}!}", "\"?\" or \":\" expected at: \"...}>>>!\"");
    check("${{x}==bogus{y}}", "bad operator suffix at: \"...==>>>bogus\"");
    check("${{x} <level {2}}", "malformed compatibility level syntax: \"x\"");
    check("${a?{x}y}", "\":\" expected at: \"...x}>>>y\"");
    check("${a?{x}:{y}z}", "unexpected input at: \"...y}>>>z\"");
    check("${a?{x}", "truncated macro reference: \"${a?{x}\"");
    check("$(a?{x)", "unbalanced {} in attribute expression: \"{x\"");
}

TEST_CASE("self-referencing values stop with Postfix's nesting error, not a crash") {
    Table t{{{"a", "$b"}, {"b", "$a"}, {"c", "${{$c} == {x}}"}}};
    auto r = t.expand("$a");
    CHECK(r.error);
    REQUIRE_FALSE(r.warnings.empty());
    CHECK(r.warnings.back().rfind("unreasonable macro call nesting: ", 0) == 0);
    CHECK(t.expand("$c").error);
}

TEST_CASE("doubling references cannot blow up expansion time or size") {
    Table t;
    for (int i = 0; i < 60; ++i)
        t.values["p" + std::to_string(i)] = "$p" + std::to_string(i + 1) + " $p" + std::to_string(i + 1);
    t.values["p60"] = "x";
    auto r = t.expand("$p0");
    CHECK(r.error);
}

TEST_CASE("scan finds names in every branch without looking them up") {
    auto names = scan_macro_names("${a?{$b}:{$c}} ${{$d} == {e} ? {$f}} $$g ${h:x$i}");
    std::vector<std::string> want = {"a", "b", "c", "d", "f", "h", "i"};
    CHECK(names == want);
}

TEST_CASE("compatibility levels encode major.minor.patch for comparison") {
    CHECK(compat_level_from_string("2").value() < compat_level_from_string("3.6").value());
    CHECK(compat_level_from_string("3.6").value() < compat_level_from_string("3.10").value());
    CHECK(compat_level_from_string("3.6.1").value() > compat_level_from_string("3.6").value());
    CHECK_FALSE(compat_level_from_string(""));
    CHECK_FALSE(compat_level_from_string("3."));
    CHECK_FALSE(compat_level_from_string("3.6.1.2"));
    CHECK_FALSE(compat_level_from_string("-1"));
    CHECK_FALSE(compat_level_from_string("3.1024"));
}

TEST_CASE("expansion survives random bytes") {
    Table t{{{"a", "$b"}, {"b", "${a?{x}:{$a}}"}}};
    uint32_t seed = 12345;
    const char alphabet[] = "${}()?:ab =<>!lvel\0x\n";
    for (int round = 0; round < 3000; ++round) {
        std::string s;
        int len = static_cast<int>(seed % 40);
        for (int i = 0; i < len; ++i) {
            seed = seed * 1103515245u + 12345u;
            s += alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        seed = seed * 1103515245u + 12345u;
        auto r = t.expand(s);
        CHECK((r.error || !r.warnings.empty() || r.warnings.empty()));
        (void)scan_macro_names(s);
    }
}
