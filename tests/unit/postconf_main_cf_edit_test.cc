#include <catch2/catch.hpp>

#include "util/config/main_cf_edit.h"

using namespace postern::config;

TEST_CASE("main.cf edit replaces every entry in place and appends new names sorted") {
    std::string in = "# head\nmyhostname = a\n  # inner\nmydestination = x,\n   y\n\nmyhostname=b\nrelayhost = [z]\n";
    auto r = edit_main_cf_text(in, MainCfEditMode::Set,
                               {{"myhostname", "new"}, {"zzz", "1 2"}, {"aaa", ""}, {"mydestination", "q"}});
    CHECK(r.text ==
          "# head\nmyhostname = new\n  # inner\nmydestination = q\n\nmyhostname = new\nrelayhost = [z]\naaa = \nzzz = 1 2\n");
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0] == "multiple entries for \"myhostname\"");
}

TEST_CASE("main.cf edit comments out an entry with its continuation lines") {
    std::string in = "a = 1\nb = 2,\n  3\n# keep\nc = 4\n";
    auto r = edit_main_cf_text(in, MainCfEditMode::CommentOut, {{"b", ""}});
    CHECK(r.text == "a = 1\n#b = 2,\n#  3\n# keep\nc = 4\n");
}

TEST_CASE("main.cf edit removes an entry with its continuation lines, keeping comments") {
    std::string in = "a = 1\nb = 2,\n  # note\n  3\nc = 4";
    auto r = edit_main_cf_text(in, MainCfEditMode::Remove, {{"b", ""}, {"c", ""}});
    CHECK(r.text == "a = 1\n  # note\n");
}

TEST_CASE("main.cf edit adds a newline before appending to a file without one") {
    auto r = edit_main_cf_text("a = 1", MainCfEditMode::Set, {{"b", "2"}});
    CHECK(r.text == "a = 1\nb = 2\n");
}

TEST_CASE("name=value split follows Postfix's split_nameval") {
    auto ok = split_name_value("  name =  some value  ");
    REQUIRE(ok.ok());
    CHECK(ok->name == "name");
    CHECK(ok->value == "some value");
    CHECK(split_name_value("foo").error() == "missing '=' after attribute name");
    CHECK(split_name_value("=x").error() == "missing attribute name");
    CHECK(split_name_value("a b=c").error() == "missing '=' after attribute name");
}

TEST_CASE("edit requests reject comments and values where none belong") {
    std::vector<std::string> warnings;
    auto r = parse_main_cf_edits({"#a=1"}, MainCfEditMode::Set, warnings);
    CHECK(r.error() == "-e, -X, or -# accepts no comment input");
    r = parse_main_cf_edits({"a=1"}, MainCfEditMode::Remove, warnings);
    CHECK(r.error() == "-X or -# requires parameter names without value");
    r = parse_main_cf_edits({"foo"}, MainCfEditMode::Set, warnings);
    CHECK(r.error() == "missing '=' after attribute name: \"foo\"");
    r = parse_main_cf_edits({"a=1", "a = 2"}, MainCfEditMode::Set, warnings);
    REQUIRE(r.ok());
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].value == "2");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0] == "ignoring earlier request: 'a = 1'");
}
