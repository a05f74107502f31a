#include <catch2/catch.hpp>

#include <map>

#include "util/message/address_map.h"

using namespace postern;
using namespace postern::message;

namespace {

AddressMapper mapper(std::map<std::string, std::string> entries, std::string delim = "+") {
    AddressMapper m;
    m.lookup = [entries](std::string_view key) {
        auto it = entries.find(std::string(key));
        if (it == entries.end()) return table::LookupResult::miss();
        if (it->second == "!error") return table::LookupResult::fail("table down");
        return table::LookupResult::hit(it->second);
    };
    m.is_local_domain = [](std::string_view d) { return d == "local.example"; };
    m.delimiters = std::move(delim);
    return m;
}

}  // namespace

TEST_CASE("address map lookup order: full, without extension, local user, @domain") {
    AddressMapper m = mapper({{"a+x@d.example", "full@t"}, {"b@d.example", "noext@t"},
                              {"c", "bare@t"}, {"@d.example", "catch@t"}});
    CHECK(map_address(m, "a+x@d.example").addresses == std::vector<std::string>{"full@t"});
    CHECK(map_address(m, "b+y@d.example").addresses == std::vector<std::string>{"noext+y@t"});
    CHECK(map_address(m, "c@d.example").addresses == std::vector<std::string>{"catch@t"});
    CHECK(map_address(m, "c@local.example").addresses == std::vector<std::string>{"bare@t"});
    CHECK(map_address(m, "zz@other.example").status == table::LookupResult::Status::NotFound);
}

TEST_CASE("address map: @domain results keep the local part, extension not propagated when off") {
    AddressMapper m = mapper({{"@old.example", "@new.example"}, {"u@e.example", "v@e.example"}});
    CHECK(map_address(m, "joe@old.example").addresses == std::vector<std::string>{"joe@new.example"});
    m.propagate = false;
    CHECK(map_address(m, "u+tag@e.example").addresses == std::vector<std::string>{"v@e.example"});
}

TEST_CASE("canonical mapping repeats until stable and reports table errors") {
    AddressMapper m = mapper({{"a@x", "b@x"}, {"b@x", "c@x, d@x"}, {"err@x", "!error"}});
    CanonicalResult r = map_canonical(m, "a@x");
    CHECK(r.address == "c@x");
    CHECK(r.changed);
    CHECK(r.warnings.size() == 1);
    CHECK(map_canonical(m, "err@x").error);
    CHECK_FALSE(map_canonical(m, "none@x").changed);
}

TEST_CASE("virtual alias expansion is recursive and allows expanding into itself once") {
    AddressMapper m = mapper({{"list@v", "a@v, b@v, list-archive@v"}, {"a@v", "a@v, a2@v"},
                              {"b@v", "real-b@r"}});
    Expansion e = expand_virtual(m, "list@v", {});
    CHECK_FALSE(e.defer);
    CHECK(e.addresses == std::vector<std::string>{"a@v", "real-b@r", "list-archive@v", "a2@v"});
    Expansion none = expand_virtual(m, "other@v", {});
    CHECK(none.addresses == std::vector<std::string>{"other@v"});
}

TEST_CASE("virtual alias expansion defers on loops, large expansions and table errors") {
    AddressMapper loop = mapper({{"a@v", "b@v"}, {"b@v", "a@v"}});
    Expansion e = expand_virtual(loop, "a@v", {});
    CHECK(e.defer);
    CHECK(e.warning == "unreasonable virtual_alias_maps map nesting for a@v -- message not accepted, try again later");
    CHECK(e.addresses == std::vector<std::string>{"a@v"});
    AddressMapper big = mapper({{"l@v", "1@v, 2@v, 3@v, 4@v"}});
    ExpansionLimits small;
    small.expansion = 3;
    CHECK(expand_virtual(big, "l@v", small).defer);
    AddressMapper err = mapper({{"x@v", "!error"}});
    Expansion te = expand_virtual(err, "x@v", {});
    CHECK(te.defer);
    CHECK(te.table_error);
}
