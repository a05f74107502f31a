// static:value — every lookup finds the same value (static:{ text with spaces } for a
// value with spaces); fail:name — every lookup fails, to test error handling (Postfix's
// dict_static and dict_fail).
#include "util/base/strings.h"
#include "util/table/table_types.h"

namespace postern::table {
namespace {

Error expecting_type_name(std::string_view spec) {
    return make_error(strprintf("open dictionary: expecting \"type:name\" form instead of \"%.*s\"",
                                static_cast<int>(spec.size()), spec.data()));
}

class StaticTable final : public Table {
public:
    StaticTable(std::string spec, unsigned flags, std::string value)
        : Table(std::move(spec), flags), value_(std::move(value)) {}
    LookupResult lookup(std::string_view) override { return LookupResult::hit(value_); }
    Status for_each(const std::function<bool(std::string_view, std::string_view)>&) override {
        return make_error(strprintf("table %s: sequence operation is not supported", spec().c_str()));
    }

private:
    std::string value_;
};

class FailTable final : public Table {
public:
    FailTable(std::string spec, unsigned flags) : Table(std::move(spec), flags) {}
    // Postfix reports the failure as a temporary error with this text.
    LookupResult lookup(std::string_view) override { return LookupResult::fail("Application error"); }
    // Updates fail too; the caller names the operation ("table fail:x: write error: ...").
    Status update(std::string_view, std::string_view) override { return make_error("Application error"); }
    Result<bool> remove(std::string_view) override { return make_error("Application error"); }
    Status for_each(const std::function<bool(std::string_view, std::string_view)>&) override {
        return make_error("Application error");
    }
};

}  // namespace

TableResult open_static_table(std::string_view spec, std::string_view name, unsigned flags) {
    if (name.empty()) return expecting_type_name(spec);
    std::string value(name);
    if (name.front() == '{') {
        if (name.back() != '}' || name.size() < 2)
            return make_error(strprintf("bad static:name syntax: missing '}' in \"%.*s\"",
                                        static_cast<int>(name.size()), name.data()));
        value = std::string(trim(name.substr(1, name.size() - 2)));
    }
    return std::unique_ptr<Table>(std::make_unique<StaticTable>(std::string(spec), flags, std::move(value)));
}

TableResult open_fail_table(std::string_view spec, std::string_view name, unsigned flags) {
    if (name.empty()) return expecting_type_name(spec);
    return std::unique_ptr<Table>(std::make_unique<FailTable>(std::string(spec), flags));
}

}  // namespace postern::table
