#include "util/table/table.h"

#include <algorithm>

#include "util/base/strings.h"
#include "util/table/table_types.h"

namespace postern::table {
namespace {

struct TypeEntry {
    std::string_view name;
    TableResult (*open)(std::string_view spec, std::string_view name, unsigned flags);
};

// Sorted by name: postconf -m prints them in this order.
constexpr TypeEntry kTypes[] = {
    {"btree", open_btree_table},     {"cidr", open_cidr_table},
    {"fail", open_fail_table},       {"hash", open_hash_table},
    {"inline", open_inline_table},   {"mysql", open_mysql_table},
    {"pcre", open_pcre_table},       {"regexp", open_regexp_table},
    {"static", open_static_table},   {"texthash", open_texthash_table},
    {"unix", open_unix_table},
};

}  // namespace

Status Table::update(std::string_view, std::string_view) {
    return make_error(strprintf("table %s: operation not supported", spec_.c_str()));
}

Result<bool> Table::remove(std::string_view) {
    return make_error(strprintf("table %s: operation not supported", spec_.c_str()));
}

Status Table::for_each(const std::function<bool(std::string_view, std::string_view)>&) {
    return make_error(strprintf("table %s is not iterable", spec_.c_str()));
}

Status Table::sync() { return Status::success(); }

bool split_spec(std::string_view spec, std::string_view& type, std::string_view& name) {
    size_t colon = spec.find(':');
    if (colon == std::string_view::npos) return false;
    type = spec.substr(0, colon);
    name = spec.substr(colon + 1);
    return true;
}

Result<std::unique_ptr<Table>> open_table(std::string_view spec, unsigned flags) {
    std::string_view type, name;
    if (!split_spec(spec, type, name))
        return make_error(strprintf("need dictionary type:name, got \"%.*s\"",
                                    static_cast<int>(spec.size()), spec.data()));
    for (const TypeEntry& t : kTypes)
        if (t.name == type) return t.open(spec, name, flags);
    return make_error(strprintf("unsupported dictionary type: %.*s", static_cast<int>(type.size()),
                                type.data()));
}

std::vector<std::string_view> table_types() {
    std::vector<std::string_view> out;
    for (const TypeEntry& t : kTypes) out.push_back(t.name);
    return out;
}

}  // namespace postern::table
