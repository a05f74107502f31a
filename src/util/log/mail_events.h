// The text of Postfix's mail-flow log records, so that every daemon writes them the same
// way and log analysers (pflogsumm, fail2ban, ...) read Postern's logs unchanged:
//
//   smtpd:   "3F1A2B: client=host.example[192.0.2.1]"
//   cleanup: "3F1A2B: message-id=<abc@example>"
//   qmgr:    "3F1A2B: from=<a@example>, size=1234, nrcpt=1 (queue active)"
//   agents:  "3F1A2B: to=<b@example>, relay=mx[192.0.2.2]:25, delay=0.52,
//             delays=0.01/0.01/0.2/0.3, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
//   qmgr:    "3F1A2B: removed"
//
// These functions only build the text; callers pass it to log::info("%s", ...).
#pragma once

#include <sys/time.h>

#include <string>
#include <string_view>

namespace postern::log {

// Postfix's format_tv: a time as a decimal number of seconds, large values rounded to
// whole seconds, small ones to `sig_digits` significant digits but never more than
// `max_digits` after the point, trailing zeros dropped ("0.52", "1.1", "12", "0.001").
// sig_digits is clamped to 1..6 and max_digits to 0..6; negative times print as 0.
std::string format_delay(long sec, long usec, int sig_digits = 2, int max_digits = 2);

// "name[addr]", or "name[addr]:port" when smtpd_client_port_logging is on.
std::string client_namaddr(std::string_view name, std::string_view addr,
                           std::string_view port = {}, bool port_logging = false);

// smtpd's record when a queue file is opened; SASL fields appear when authenticated.
struct ClientEvent {
    std::string_view queue_id;  // "NOQUEUE" when none
    std::string_view namaddr;   // client_namaddr(...)
    std::string_view sasl_method;
    std::string_view sasl_username;
    std::string_view sasl_sender;
};
std::string client_line(const ClientEvent& e);

// cleanup's record of the Message-ID header value as it appears (normally "<...>");
// `resent` logs "resent-message-id=". An empty value logs "message-id=<>".
std::string message_id_line(std::string_view queue_id, std::string_view message_id,
                            bool resent = false);

// qmgr's record when a message enters the active queue: "(queue active)".
std::string from_line(std::string_view queue_id, std::string_view sender, long size,
                      int nrcpt, std::string_view queue_name = "active");

// The time stamps of one delivery attempt (Postfix's MSG_STATS). A zero tv_sec means
// "not reached": the delays are then measured up to `now` as Postfix does.
struct DeliveryTimes {
    timeval incoming_arrival{};  // cleanup received the message
    timeval active_arrival{};    // qmgr moved it to active
    timeval agent_handoff{};     // a delivery agent took it
    timeval conn_setup_done{};   // network agents: connection ready
    timeval deliver_done{};      // delivery finished (multi-recipient: shared)
    int reuse_count = 0;         // earlier uses of the connection (conn_use = this + 1)
};

// The five figures of a delivery record, in seconds and microseconds, never negative.
struct Delays {
    timeval delay{}, before_qmgr{}, in_qmgr{}, conn_setup{}, transmission{};
};
Delays compute_delays(const DeliveryTimes& t, timeval now);

struct DeliveryEvent {
    std::string_view queue_id;
    std::string_view recipient;
    std::string_view orig_recipient;  // logged as orig_to= when it differs (any case)
    std::string_view relay;           // "mx[192.0.2.2]:25", "local", "none"
    DeliveryTimes times;
    std::string_view dsn;     // "2.0.0"
    std::string_view status;  // sent, deferred, bounced, expired, ...
    std::string_view reason;  // text inside the parentheses
    int delay_max_digits = 2; // delay_logging_resolution_limit
};
// The delivery record at time `now` (the agent passes its clock).
std::string delivery_line(const DeliveryEvent& e, timeval now);

// qmgr's record when the queue file is deleted.
std::string removed_line(std::string_view queue_id);

}  // namespace postern::log
