// Matching follows Postfix's match_list.c: entries in order, the first that decides
// wins; a table error stops the search and is reported, never taken as "no".
#include "util/rewrite/match_list.h"

#include "util/base/file_io.h"
#include "util/base/strings.h"

namespace postern::rewrite {
namespace {

bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

bool is_table_spec(std::string_view p) {
    return p.find(':') != std::string_view::npos && p.front() != '[' && p.front() != '/';
}

}  // namespace

Result<MatchList> MatchList::create(std::string_view param, const std::vector<std::string>& patterns,
                                    MatchStyle style) {
    MatchList list;
    list.param_ = std::string(param);
    list.style_ = style;
    std::vector<std::string> todo(patterns.rbegin(), patterns.rend());
    while (!todo.empty()) {
        std::string p = std::move(todo.back());
        todo.pop_back();
        Entry e;
        while (!p.empty() && p[0] == '!') {
            e.negate = !e.negate;
            p.erase(0, 1);
        }
        if (p.empty()) continue;
        if (p[0] == '/') {  // a file of more patterns, inserted in place
            auto text = read_file(p);
            if (!text) return make_error(list.param_ + ": open " + p + ": " + text.error());
            auto words = split_tokens(*text, " \t\r\n,");
            for (auto it = words.rbegin(); it != words.rend(); ++it) todo.emplace_back(*it);
            continue;
        }
        if (is_table_spec(p)) {
            auto t = table::open_table(p, table::kReadOnly | table::kFoldFix);
            if (!t) return make_error(t.error());
            e.table = std::shared_ptr<table::Table>(std::move(*t));
        } else {
            e.pattern = lowercase(p);
        }
        list.entries_.push_back(std::move(e));
    }
    return list;
}

bool MatchList::changed() const {
    for (const Entry& e : entries_)
        if (e.table && e.table->changed()) return true;
    return false;
}

Match MatchList::match(std::string_view name) const {
    std::string key = lowercase(name);
    for (const Entry& e : entries_) {
        Match m = match_entry(e, key);
        if (m == Match::Error) return m;
        if (m == Match::Yes) return e.negate ? Match::No : Match::Yes;
    }
    return Match::No;
}

Match MatchList::match_entry(const Entry& e, const std::string& name) const {
    if (e.table) return match_table(*e.table, name);
    if (name == e.pattern) return Match::Yes;
    if (style_ == MatchStyle::String || e.pattern.empty()) return Match::No;
    if (e.pattern[0] == '.') return ends_with(name, e.pattern) ? Match::Yes : Match::No;
    if (style_ == MatchStyle::DomainParent && ends_with(name, "." + e.pattern)) return Match::Yes;
    return Match::No;
}

// A table sees the name, then (domain lists, fixed-string tables only) its parents:
// "b.c", "c" for parent-style lists, ".b.c", ".c" otherwise.
Match MatchList::match_table(table::Table& t, const std::string& name) const {
    size_t pos = 0;
    bool first = true;
    while (true) {
        if (first || !t.is_pattern()) {
            auto r = t.lookup(std::string_view(name).substr(pos));
            if (r.status == table::LookupResult::Status::Error) {
                error_ = param_ + ": " + t.spec() + " lookup error" +
                         (r.error.empty() ? "" : ": " + r.error);
                return Match::Error;
            }
            if (r.found()) return Match::Yes;
        }
        if (style_ == MatchStyle::String) return Match::No;
        size_t dot = name.find('.', pos + 1);
        if (dot == std::string::npos) return Match::No;
        pos = style_ == MatchStyle::DomainParent ? dot + 1 : dot;
        first = false;
    }
}

}  // namespace postern::rewrite
