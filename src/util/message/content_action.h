// The actions of header_checks(5) and body_checks, as Postfix's cleanup_act() reads a
// table's right-hand side: REJECT [text], WARN, FILTER transport:dest, DISCARD, HOLD,
// PREPEND text, REPLACE text, REDIRECT user@domain, IGNORE, DUNNO, OK. Also the
// "reject: header ..." log record text (cleanup_act_log).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace postern::message {

enum class ContentActionType {
    Reject, Warn, Filter, Discard, Hold, Prepend, Replace, Redirect, Ignore, Dunno,
};

struct ContentAction {
    ContentActionType type = ContentActionType::Dunno;
    std::string text;     // the optional text / argument after the keyword
    std::string reason;   // Reject: "5.7.1 text" (DSN prepended, 4.x.x means defer)
    bool defer = false;   // Reject with a 4.x.x reason
    std::vector<std::string> warnings;  // Postfix's msg_warn texts; the action still applies
    // The keyword Postfix logs ("reject", "warning", "filter", ...); "" = nothing logged.
    std::string_view log_action() const;
};

// `context` is "header" or "body"; `map_class` the parameter name for warnings
// ("header_checks"). A bad argument turns the action into Dunno with a warning, as
// Postfix ignores it; an unknown keyword warns and is Dunno.
ContentAction parse_content_action(std::string_view value, std::string_view context,
                                   std::string_view map_class);

// Postfix's dsn_prepend: keeps a leading "X.Y.Z " status, else prefixes `dsn`.
std::string dsn_prepend(std::string_view dsn, std::string_view text);

// "ID: reject: header Subject: x from origin; from=<s> to=<r> proto=P helo=<h>: text"
// (content cut at 200 bytes; empty recipient/proto/helo parts are left out, the sender
// part is always there).
struct ActionLogContext {
    std::string_view queue_id;
    std::string_view origin;  // log_message_origin, "unknown" when empty
    std::string_view sender;
    std::string_view recipient;
    std::string_view proto;
    std::string_view helo;
};
std::string content_action_log(const ActionLogContext& ctx, std::string_view action,
                               std::string_view context, std::string_view content,
                               std::string_view text);

}  // namespace postern::message
