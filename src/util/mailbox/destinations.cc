#include "util/mailbox/destinations.h"

#include "util/base/strings.h"

namespace postern::mailbox {

namespace {

// Removes the quotes (and backslash escapes inside them) of a quoted string or of a
// quoted local part: "|cmd arg" -> |cmd arg, "john doe"@x -> john doe@x.
std::string unquote(std::string_view item) {
    std::string out;
    bool quoted = false;
    for (size_t i = 0; i < item.size(); ++i) {
        char c = item[i];
        if (c == '"') {
            quoted = !quoted;
        } else if (c == '\\' && quoted && i + 1 < item.size()) {
            out += item[++i];
        } else {
            out += c;
        }
    }
    return out;
}

std::string clean_item(std::string_view raw) {
    std::string_view item = trim(raw);
    // Name <addr> -> addr (only outside quotes: "|cmd <x" stays as it is).
    if (!item.empty() && item[0] != '"' && item.back() == '>') {
        size_t open = item.rfind('<');
        if (open != std::string_view::npos) item = trim(item.substr(open + 1, item.size() - open - 2));
    }
    return unquote(item);
}

}  // namespace

std::vector<std::string> split_destinations(std::string_view list) {
    std::vector<std::string> out;
    std::string current;
    bool quoted = false;
    int comment = 0;
    auto flush = [&] {
        std::string item = clean_item(current);
        if (!item.empty()) out.push_back(item);
        current.clear();
    };
    for (size_t i = 0; i < list.size(); ++i) {
        char c = list[i];
        if (quoted) {
            current += c;
            if (c == '\\' && i + 1 < list.size()) current += list[++i];
            else if (c == '"') quoted = false;
        } else if (comment > 0) {
            if (c == '(') ++comment;
            else if (c == ')') --comment;
        } else if (c == '"') {
            quoted = true;
            current += c;
        } else if (c == '(') {
            comment = 1;
        } else if (c == ',') {
            flush();
        } else {
            current += c;
        }
    }
    flush();
    return out;
}

}  // namespace postern::mailbox
