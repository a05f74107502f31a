// inline:{ key=value, { key = text with spaces } } — a table written in main.cf itself
// (Postfix's dict_inline). Entries are separated by commas or whitespace; an entry in
// braces may contain spaces around '=' and in the value. A later entry for the same key
// replaces an earlier one, as in Postfix.
#include "util/base/strings.h"
#include "util/table/table_memory.h"
#include "util/table/table_types.h"

namespace postern::table {
namespace {

constexpr std::string_view kSeparators = ", \t\r\n";

bool is_separator(char c) { return kSeparators.find(c) != std::string_view::npos; }

// Splits on separators outside braces (Postfix's mystrtokq with "{}"). False when the
// braces do not balance.
bool split_entries(std::string_view s, std::vector<std::string_view>& out) {
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_separator(s[i])) ++i;
        if (i == s.size()) break;
        size_t start = i;
        int depth = 0;
        while (i < s.size() && (depth > 0 || !is_separator(s[i]))) {
            if (s[i] == '{') ++depth;
            else if (s[i] == '}' && --depth < 0) return false;
            ++i;
        }
        if (depth != 0) return false;
        out.push_back(s.substr(start, i - start));
    }
    return true;
}

}  // namespace

TableResult open_inline_table(std::string_view spec, std::string_view name, unsigned flags) {
    const int s_len = static_cast<int>(spec.size());
    auto bad_syntax = [&] {
        return make_error(strprintf("bad syntax: \"%.*s\"; need \"inline:{name=value...}\"", s_len,
                                    spec.data()));
    };
    if (name.empty())
        return make_error(strprintf("open dictionary: expecting \"type:name\" form instead of \"%.*s\"",
                                    s_len, spec.data()));
    std::string_view body = trim(name);
    if (body.size() < 2 || body.front() != '{' || body.back() != '}') return bad_syntax();
    std::vector<std::string_view> entries;
    if (!split_entries(body.substr(1, body.size() - 2), entries) || entries.empty()) return bad_syntax();

    auto table = std::make_unique<MemoryTable>(std::string(spec), flags);
    for (std::string_view entry : entries) {
        if (entry.front() == '{') {
            if (entry.back() != '}') return bad_syntax();
            entry = trim(entry.substr(1, entry.size() - 2));
        }
        size_t eq = entry.find('=');
        if (eq == std::string_view::npos)
            return make_error(strprintf(
                "missing '=' after attribute name: \"%.*s\"; need \"inline:{name=value...}\"", s_len,
                spec.data()));
        table->put(trim(entry.substr(0, eq)), trim(entry.substr(eq + 1)));
    }
    return std::unique_ptr<Table>(std::move(table));
}

}  // namespace postern::table
