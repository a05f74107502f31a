// What every SQL-backed table (mysql_table(5) and its pgsql/sqlite siblings) shares:
// the '%' templates of "query" and "result_format", and the "domain" list that limits
// which keys reach the database. Postfix keeps the same logic in global/db_common.c.
// Nothing here talks to a server, so all of it is unit-tested without one.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/table/table.h"

namespace postern::table::sql {

// What the query and result templates of one table need from a key or a result value.
// Both templates feed one context, as in Postfix: a result_format that uses %D makes
// keys without a domain skip the query too.
class TemplateContext {
public:
    // `spec` ("mysql:/etc/postern/x.cf") names the table in warnings.
    explicit TemplateContext(std::string spec = {}) : spec_(std::move(spec)) {}

    // Validates `format` and records what it needs. The error names the table
    // ("/etc/postern/x.cf: Invalid query template: ... '%x'").
    Status add(std::string_view format, bool is_query, std::string_view table_name);

    // Escapes one substituted piece and appends it to `out` (mysql_real_escape_string).
    using Quote = std::function<void(std::string_view piece, std::string& out)>;

    // Expands the query template for `key` into `out` (replacing it). False when the
    // key lacks a part the templates need (no '@' for %d, an empty local part for %u,
    // too few domain labels for %3): the lookup is then "not found" without a query.
    bool expand_query(std::string_view format, std::string_view key, const Quote& quote,
                      std::string& out) const;

    // Expands result_format for one result value, appending to `out` after a ',' when
    // `out` is not empty. False when the value lacks what the template needs (no domain
    // for %d, empty local part for %u): that value is skipped.
    bool expand_result(std::string_view format, std::string_view value, std::string_view key,
                       std::string& out) const;

    int domain_labels_needed() const { return nparts_; }

private:
    std::string spec_;
    unsigned flags_ = 0;
    int nparts_ = 0;  // highest %1..%9 in any template
};

// The query that the legacy parameters (select_field, table, where_field,
// additional_conditions) stand for: "SELECT f FROM t WHERE w='%s' cond".
std::string legacy_query(std::string_view select_field, std::string_view table,
                         std::string_view where_field, std::string_view additional_conditions);

// The "domain" parameter: a Postfix string list of domain names, "/file/name" (one or
// more patterns per line, '#' comments) and "type:table" entries, each optionally
// negated with '!'. The first pattern that matches decides; no match means "skip".
// Names compare case-insensitively and exactly (no parent-domain match).
class DomainFilter {
public:
    DomainFilter() = default;
    DomainFilter(DomainFilter&&) = default;
    DomainFilter& operator=(DomainFilter&&) = default;
    ~DomainFilter();

    // Parses the list; files are read and tables opened now, so errors show at open.
    static Result<DomainFilter> parse(std::string_view list, std::string_view table_name);

    bool empty() const { return patterns_.empty(); }

    enum class Verdict { Lookup, Skip, Error };
    // Whether `key` may be looked up: it must be user@domain with a non-empty local part
    // and a domain the list matches. `error` is set on Error (a table lookup failed).
    Verdict check(std::string_view key, std::string& error) const;

private:
    struct Pattern {
        bool negated = false;
        std::string text;              // lowercased domain, when table is null
        std::unique_ptr<Table> table;  // "type:name" entries
    };
    Status add_item(std::string_view item, std::string_view table_name, int depth);

    std::vector<Pattern> patterns_;
};

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points past
// U+10FFFF), the check Postfix applies to keys when SMTPUTF8 is on.
bool valid_utf8(std::string_view s);

}  // namespace postern::table::sql
