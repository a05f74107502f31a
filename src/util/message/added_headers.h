// The headers cleanup adds to a locally submitted message when they are missing, in
// Postfix's exact forms (cleanup_header_done_callback, mail_date, pickup's Received:).
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace postern::message {

// RFC 5322 date in local time as Postfix's mail_date():
// "Mon, 23 Nov 2026 13:22:44 +0000 (UTC)" (the day padded with a space: " 3 Nov").
std::string mail_date(time_t when);

// "Message-Id: <20261123132244.ABC123@host.example>" (prefix "Resent-" when resent);
// the time stamp is the queue file's creation time in UTC.
std::string message_id_header(std::string_view resent, time_t created, std::string_view queue_id,
                              std::string_view myhostname);
// The value alone: "<20261123132244.ABC123@host.example>".
std::string message_id_value(time_t created, std::string_view queue_id, std::string_view myhostname);

// The From: for a missing sender header, per header_from_format: "standard" gives
// "From: Full Name <user@example>" (the name quoted when it has specials or % !),
// "obsolete" gives "From: user@example (Full Name)". Without a full name, or for the
// null sender (MAILER-DAEMON): "From: user@example". `sender` is in internal form.
std::string from_header(std::string_view resent, std::string_view sender,
                        const std::optional<std::string>& fullname, bool standard = true);

// What local submission gets as its first header (Postfix's pickup adds it):
// "Received: by host (Postern, from userid 1000)\n\tid ID; <mail_date>".
std::string received_header(std::string_view myhostname, std::string_view mail_name, long uid,
                            std::string_view queue_id, time_t when);

}  // namespace postern::message
