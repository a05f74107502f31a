// The right-hand side of an access(5) entry, parsed into a typed action, in the order
// and with the rules of Postfix 3.7's check_table_result(): OK/RELAY, all-numeric (= OK),
// REJECT/DEFER [dsn] [text], DEFER_IF_REJECT/DEFER_IF_PERMIT, 4NN/5NN [dsn] text, DUNNO,
// HOLD/DISCARD/WARN/INFO [text], FILTER transport:dest, REDIRECT/BCC user@domain,
// PREPEND header: text, HANGUP, and anything else: a list of restriction names.
//
// The parser only classifies. Deciding what a DISCARD or a restriction list means for
// the session is smtpd's job; the parameters it needs come in as arguments.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace postern::access {

enum class ActionType {
    Ok,             // OK, RELAY, or an all-numeric value
    Reject,         // REJECT [text]: access_map_reject_code
    Defer,          // DEFER [text]: access_map_defer_code
    DeferIfReject,  // DEFER_IF_REJECT [text]
    DeferIfPermit,  // DEFER_IF_PERMIT [text]
    Code,           // "4NN text" / "5NN text"
    Dunno,
    Hold,
    Discard,
    Filter,         // text = "transport:destination"
    Redirect,       // text = user@domain
    Bcc,            // text = user@domain
    Prepend,        // text = "Header: value"
    Warn,
    Info,
    Hangup,         // Postfix's unsupported test action: drop the connection
    Restrictions,   // restrictions = names to evaluate in order
};

struct Action {
    ActionType type = ActionType::Dunno;
    int code = 0;          // SMTP reply code for Reject, Defer, DeferIf*, Code
    std::string dsn;       // enhanced status code for those ("5.7.1" unless the text gave one)
    std::string text;      // free text after the keyword (after the DSN for rejects), or the
                           // argument of FILTER/REDIRECT/BCC/PREPEND; may be empty
    std::vector<std::string> restrictions;
    std::vector<std::string> warnings;  // Postfix logs these but still acts (empty value)
};

// An entry smtpd cannot act on. Postfix logs `warnings` and then either ignores the
// entry (Dunno: FILTER without transport:destination, REDIRECT/BCC without '@', PREPEND
// without a header) or fails the command with 451 4.3.5 (ServerError: a lookup table
// named inside an access map).
struct ActionError {
    enum class Effect { Dunno, ServerError };
    Effect effect = Effect::Dunno;
    std::vector<std::string> warnings;
};

struct ActionParams {
    int reject_code = 554;  // access_map_reject_code
    int defer_code = 451;   // access_map_defer_code
};

using ParsedAction = std::variant<Action, ActionError>;

// `table` names the access table and `datum` the looked-up string, for the warnings
// ("access table hash:/etc/postfix/access entry "x" requires user@domain target").
ParsedAction parse_action(std::string_view value, std::string_view table, std::string_view datum,
                          const ActionParams& params);

// Which command's data was rejected, for the reply text and the DSN fix-up.
enum class ReplyClass { Client, Helo, Sender, Recipient, Other };
std::string_view reply_class_name(ReplyClass c);  // "Client host", "Sender address", ...

// Postfix's smtpd_dsn_fix(): an address DSN (X.1.Y) is mapped to the sender or recipient
// variant, or to X.0.0 for non-address data. Other DSNs are left alone.
std::string fix_dsn(std::string_view dsn, ReplyClass reply_class);

// The reply for a reject-type action, as Postfix builds it:
// "554 5.7.1 <name>: Client host rejected: Access denied".
std::string reject_reply(const Action& action, std::string_view reply_name, ReplyClass reply_class);

}  // namespace postern::access
