#include "util/message/content_action.h"

#include <cctype>

#include "util/base/strings.h"
#include "util/message/header_opts.h"

namespace postern::message {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// "X.Y.Z" with X in 2,4,5 and 1-3 digit fields (Postfix's dsn_valid()).
size_t dsn_length(std::string_view s) {
    if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return 0;
    size_t i = 2;
    for (int field = 0; field < 2; ++field) {
        size_t start = i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        if (i == start || i - start > 3) return 0;
        if (field == 0) {
            if (i >= s.size() || s[i] != '.') return 0;
            ++i;
        }
    }
    if (i < s.size() && !is_space(s[i])) return 0;
    return i;
}

ContentAction dunno_with(std::string warning) {
    ContentAction a;
    a.warnings.push_back(std::move(warning));
    return a;
}

ContentAction parse_with_text(std::string_view word, std::string_view text,
                              std::string_view context, std::string_view map_class) {
    ContentAction a;
    a.text = std::string(text);
    bool header_ctx = context == "header";
    if (iequals(word, "PREPEND") || iequals(word, "REPLACE")) {
        std::string upper = iequals(word, "PREPEND") ? "PREPEND" : "REPLACE";
        if (text.empty()) return dunno_with(upper + " action without text in " + std::string(map_class) + " map");
        if (header_ctx && !is_header(text))
            return dunno_with("bad " + upper + " header text \"" + std::string(text) + "\" in " +
                              std::string(map_class) + " map -- need \"headername: headervalue\"");
        a.type = upper == "PREPEND" ? ContentActionType::Prepend : ContentActionType::Replace;
        return a;
    }
    if (iequals(word, "REDIRECT")) {
        if (text.find('@') == std::string_view::npos)
            return dunno_with("bad REDIRECT target \"" + std::string(text) + "\" in " +
                              std::string(map_class) + " map -- need user@domain");
        a.type = ContentActionType::Redirect;
        return a;
    }
    if (iequals(word, "FILTER")) {
        if (text.empty()) return dunno_with("missing FILTER command argument in " + std::string(map_class) + " map");
        if (text.find(':') == std::string_view::npos)
            return dunno_with("bad FILTER command " + std::string(text) + " in " + std::string(map_class) +
                              " -- need transport:destination");
        a.type = ContentActionType::Filter;
        return a;
    }
    return dunno_with("unknown command in " + std::string(map_class) + " map: " + std::string(word) +
                      (text.empty() ? "" : " " + std::string(text)));
}

}  // namespace

std::string_view ContentAction::log_action() const {
    switch (type) {
        case ContentActionType::Reject: return "reject";
        case ContentActionType::Warn: return "warning";
        case ContentActionType::Filter: return "filter";
        case ContentActionType::Discard: return "discard";
        case ContentActionType::Hold: return "hold";
        case ContentActionType::Prepend: return "prepend";
        case ContentActionType::Replace: return "replace";
        case ContentActionType::Redirect: return "redirect";
        default: return "";
    }
}

std::string dsn_prepend(std::string_view dsn, std::string_view text) {
    if (dsn_length(text) > 0) return std::string(text);
    return std::string(dsn) + " " + std::string(text);
}

ContentAction parse_content_action(std::string_view value, std::string_view context,
                                   std::string_view map_class) {
    size_t end = 0;
    while (end < value.size() && value[end] != ' ' && value[end] != '\t') ++end;
    std::string_view word = value.substr(0, end);
    std::string_view text = value.substr(end);
    while (!text.empty() && is_space(text.front())) text.remove_prefix(1);

    ContentAction a;
    a.text = std::string(text);
    if (iequals(word, "REJECT")) {
        a.type = ContentActionType::Reject;
        a.reason = text.empty() ? "5.7.1 message content rejected" : dsn_prepend("5.7.1", text);
        if (a.reason[0] != '4' && a.reason[0] != '5') {
            a.warnings.push_back("bad DSN action in " + std::string(text) + " -- need 4.x.x or 5.x.x");
            a.reason[0] = '4';
        }
        a.defer = a.reason[0] == '4';
        return a;
    }
    if (iequals(word, "WARN")) { a.type = ContentActionType::Warn; return a; }
    if (iequals(word, "DISCARD")) { a.type = ContentActionType::Discard; return a; }
    if (iequals(word, "HOLD")) { a.type = ContentActionType::Hold; return a; }
    if (iequals(word, "IGNORE")) { a.type = ContentActionType::Ignore; return a; }
    if (iequals(word, "DUNNO") || iequals(word, "OK")) { a.type = ContentActionType::Dunno; return a; }
    return parse_with_text(word, text, context, map_class);
}

std::string content_action_log(const ActionLogContext& ctx, std::string_view action,
                               std::string_view context, std::string_view content,
                               std::string_view text) {
    std::string out;
    out.reserve(300);
    out.append(ctx.queue_id).append(": ").append(action).append(": ").append(context).append(" ");
    out.append(content.substr(0, 200));
    out.append(" from ").append(ctx.origin.empty() ? "unknown" : ctx.origin).append(";");
    out.append(" from=<").append(ctx.sender).append(">");
    if (!ctx.recipient.empty()) out.append(" to=<").append(ctx.recipient).append(">");
    if (!ctx.proto.empty()) out.append(" proto=").append(ctx.proto);
    if (!ctx.helo.empty()) out.append(" helo=<").append(ctx.helo).append(">");
    if (!text.empty()) out.append(": ").append(text);
    return out;
}

}  // namespace postern::message
