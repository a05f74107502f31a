// Postfix's mac_expand for the texts smtpd fills in per session (RBL reply templates,
// smtpd_reject_footer) and the reject footer itself (Postfix's smtp_reply_footer).
#pragma once

#include <map>
#include <string>

namespace postern::smtpd {

// $name, ${name}, ${name?text}, ${name:text}, $$ against `macros`; unknown names
// expand to nothing.
std::string expand_macros(const std::string& tmpl, const std::map<std::string, std::string>& macros);

// `reply` ("550 5.1.1 text", lines joined by "\n") with the footer template appended:
// each "\n" (backslash, n) in the template starts a new reply line carrying the last
// line's code and enhanced status code; "\c" at the start continues the last line
// instead. A reply that does not start with a code is returned as it is.
std::string add_reply_footer(const std::string& reply, const std::string& footer,
                             const std::map<std::string, std::string>& macros);

}  // namespace postern::smtpd
