// Postfix's string_list and domain_list: a list of names, "!name" exclusions,
// "/file/name" includes and "type:table" lookups, as in mydestination, relay_domains,
// virtual_alias_domains. A domain list also matches subdomains: ".example.com" always,
// "example.com" when the parameter is in parent_domain_matches_subdomains.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/table/table.h"

namespace postern::rewrite {

enum class MatchStyle { String, Domain, DomainParent };

enum class Match { No, Yes, Error };

class MatchList {
public:
    // `param` names the list in errors. Files are read and tables opened here.
    static Result<MatchList> create(std::string_view param, const std::vector<std::string>& patterns,
                                    MatchStyle style);
    MatchList() = default;

    Match match(std::string_view name) const;
    bool empty() const { return entries_.empty(); }
    // A table behind the list was rebuilt since it was opened.
    bool changed() const;
    const std::string& error() const { return error_; }

private:
    struct Entry {
        std::string pattern;                   // lower case; "" for a table
        std::shared_ptr<table::Table> table;
        bool negate = false;
    };
    Match match_entry(const Entry& e, const std::string& name) const;
    Match match_table(table::Table& t, const std::string& name) const;

    std::string param_;
    std::vector<Entry> entries_;
    MatchStyle style_ = MatchStyle::String;
    mutable std::string error_;
};

}  // namespace postern::rewrite
