#include "util/access/access_action.h"

#include <cctype>

#include "util/base/strings.h"
#include "util/table/pattern_source.h"

namespace postern::access {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

// Length of an RFC 3463 status code at the start of `s` ("4.7.1"), followed by the end
// or a blank; 0 when there is none (Postfix's dsn_valid()).
size_t dsn_length(std::string_view s) {
    if (s.empty() || (s[0] != '2' && s[0] != '4' && s[0] != '5')) return 0;
    size_t i = 1;
    for (int part = 0; part < 2; ++part) {
        if (i >= s.size() || s[i] != '.') return 0;
        size_t start = ++i;
        while (i < s.size() && is_digit(s[i])) ++i;
        if (i == start || i - start > 3) return 0;
    }
    if (i < s.size() && !is_blank(s[i])) return 0;
    return i;
}

// Postfix's dsn_split(): an optional leading status code, then the text.
void split_dsn(Action& a, std::string_view default_dsn, std::string_view text) {
    size_t n = dsn_length(text);
    if (n == 0) {
        a.dsn.assign(default_dsn);
        a.text.assign(text);
        return;
    }
    a.dsn.assign(text.substr(0, n));
    text.remove_prefix(n);
    while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
    a.text.assign(text);
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_digit(c)) return false;
    return true;
}

// Postfix's is_header(): a header name (printable, no blank or ':'), blanks, then ':'.
bool is_header(std::string_view s) {
    size_t i = 0;
    while (i < s.size() && s[i] > 32 && s[i] < 127 && s[i] != ':') ++i;
    if (i == 0) return false;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return i < s.size() && s[i] == ':';
}

ActionError dunno_error(std::string message) {
    return ActionError{ActionError::Effect::Dunno, {std::move(message)}};
}

std::string quoted_entry(std::string_view table, std::string_view datum) {
    return strprintf("access table %.*s entry \"%.*s\"", static_cast<int>(table.size()),
                     table.data(), static_cast<int>(datum.size()), datum.data());
}

}  // namespace

ParsedAction parse_action(std::string_view value, std::string_view table, std::string_view datum,
                          const ActionParams& params) {
    size_t cmd_len = value.find_first_of(" \t");
    if (cmd_len == std::string_view::npos) cmd_len = value.size();
    std::string_view cmd = value.substr(0, cmd_len);
    std::string_view text = value.substr(cmd_len);
    while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);

    Action a;
    auto is = [&](std::string_view word) { return iequals(cmd, word); };
    auto with_text = [&](ActionType t) {
        a.type = t;
        a.text.assign(text);
        return a;
    };
    if (is("DUNNO")) return with_text(ActionType::Dunno);
    if (is("REJECT") || is("DEFER")) {
        bool reject = is("REJECT");
        a.type = reject ? ActionType::Reject : ActionType::Defer;
        a.code = reject ? params.reject_code : params.defer_code;
        split_dsn(a, reject ? "5.7.1" : "4.7.1", text);
        return a;
    }
    if (is("HANGUP")) return with_text(ActionType::Hangup);
    if (is("INFO")) return with_text(ActionType::Info);
    if (is("WARN")) return with_text(ActionType::Warn);
    if (is("FILTER")) {
        if (text.empty()) return dunno_error(quoted_entry(table, datum) + " has FILTER entry without value");
        if (text.find(':') == std::string_view::npos)
            return dunno_error(quoted_entry(table, datum) + " requires transport:destination");
        return with_text(ActionType::Filter);
    }
    if (is("HOLD")) return with_text(ActionType::Hold);
    if (is("DISCARD")) return with_text(ActionType::Discard);
    if (is("REDIRECT") || is("BCC")) {
        if (text.find('@') == std::string_view::npos)
            return dunno_error(quoted_entry(table, datum) + " requires user@domain target");
        return with_text(is("BCC") ? ActionType::Bcc : ActionType::Redirect);
    }
    if (is("DEFER_IF_PERMIT") || is("DEFER_IF_REJECT")) {
        a.type = is("DEFER_IF_PERMIT") ? ActionType::DeferIfPermit : ActionType::DeferIfReject;
        a.code = params.defer_code;
        split_dsn(a, "4.7.1", text);
        return a;
    }
    if (is("PREPEND")) {
        if (text.empty() || !is_header(text))
            return dunno_error(quoted_entry(table, datum) + " requires header: text");
        return with_text(ActionType::Prepend);
    }
    if (all_digits(value)) return with_text(ActionType::Ok);
    if (cmd_len == 3 && !text.empty() && (value[0] == '4' || value[0] == '5') &&
        is_digit(value[1]) && is_digit(value[2])) {
        a.type = ActionType::Code;
        a.code = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        std::string def = std::string(1, value[0]) + ".7.1";
        split_dsn(a, def, text);
        return a;
    }
    if (is("OK") || is("RELAY")) return with_text(ActionType::Ok);
    std::string table_s(table), value_s(value);
    if (value.find(':') != std::string_view::npos) {
        return ActionError{ActionError::Effect::ServerError,
                           {strprintf("access table %s has entry with lookup table: %s",
                                      table_s.c_str(), value_s.c_str()),
                            "do not specify lookup tables inside SMTPD access maps",
                            "define a restriction class and specify its name instead."}};
    }
    for (std::string_view name : table::split_outside_braces(value)) a.restrictions.emplace_back(name);
    if (a.restrictions.empty()) {
        // In the dark ages an empty right-hand side meant OK; Postfix still treats it so.
        a.type = ActionType::Ok;
        a.warnings.push_back(strprintf("access table %s entry %s has empty value", table_s.c_str(),
                                       value_s.c_str()));
        return a;
    }
    a.type = ActionType::Restrictions;
    return a;
}

std::string_view reply_class_name(ReplyClass c) {
    switch (c) {
        case ReplyClass::Client: return "Client host";
        case ReplyClass::Helo: return "Helo command";
        case ReplyClass::Sender: return "Sender address";
        case ReplyClass::Recipient: return "Recipient address";
        case ReplyClass::Other: break;
    }
    return "Data command";
}

std::string fix_dsn(std::string_view dsn, ReplyClass reply_class) {
    if (dsn.size() < 5 || !is_digit(dsn[0]) || dsn.substr(1, 3) != ".1.") return std::string(dsn);
    std::string_view detail = dsn.substr(4);
    // Index by the final digits of the address status: sender and recipient variants.
    struct Map {
        std::string_view detail, sender, rcpt;
    };
    static constexpr Map kMap[] = {
        {"1", "4.1.7", "4.1.1"}, {"2", "4.1.8", "4.1.2"}, {"3", "4.1.7", "4.1.3"},
        {"4", "4.1.7", "4.1.4"}, {"5", "4.1.0", "4.1.5"}, {"6", "4.1.7", "4.1.6"},
        {"7", "4.1.7", "4.1.3"}, {"8", "4.1.8", "4.1.2"},
    };
    std::string_view result = "4.1.0";
    if (reply_class == ReplyClass::Sender || reply_class == ReplyClass::Recipient) {
        for (const Map& m : kMap)
            if (m.detail == detail) result = reply_class == ReplyClass::Sender ? m.sender : m.rcpt;
    } else {
        result = "4.0.0";
    }
    std::string out(result);
    out[0] = dsn[0];  // keep the class (2, 4 or 5) the entry asked for
    return out;
}

std::string reject_reply(const Action& action, std::string_view reply_name, ReplyClass reply_class) {
    std::string dsn = fix_dsn(action.dsn, reply_class);
    std::string code = std::to_string(action.code);
    // The reply code decides the class; a 4.x.x status under a 5xx code would mislead.
    if (!dsn.empty() && !code.empty()) dsn[0] = code[0];
    bool service = action.type == ActionType::DeferIfPermit || action.type == ActionType::DeferIfReject;
    std::string text = action.text.empty() ? (service ? "Service unavailable" : "Access denied")
                                           : action.text;
    std::string name(reply_name), cls(reply_class_name(reply_class));
    return strprintf("%s %s <%s>: %s rejected: %s", code.c_str(), dsn.c_str(), name.c_str(),
                     cls.c_str(), text.c_str());
}

}  // namespace postern::access
