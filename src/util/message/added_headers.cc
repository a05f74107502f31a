#include "util/message/added_headers.h"

#include <cstdio>
#include <cstdlib>

#include "util/address/address.h"

namespace postern::message {

std::string mail_date(time_t when) {
    struct tm local;
    localtime_r(&when, &local);
    static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    long off = local.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    off = std::labs(off);
    char zone[64];
    strftime(zone, sizeof zone, "%Z", &local);
    char buf[160];
    snprintf(buf, sizeof buf, "%s, %2d %s %d %02d:%02d:%02d %c%02ld%02ld (%s)", kDays[local.tm_wday],
             local.tm_mday, kMonths[local.tm_mon], local.tm_year + 1900, local.tm_hour, local.tm_min,
             local.tm_sec, sign, off / 3600, (off % 3600) / 60, zone);
    return buf;
}

std::string message_id_value(time_t created, std::string_view queue_id, std::string_view myhostname) {
    struct tm utc;
    gmtime_r(&created, &utc);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &utc);
    std::string out = "<";
    out.append(stamp).append(".").append(queue_id).append("@").append(myhostname).append(">");
    return out;
}

std::string message_id_header(std::string_view resent, time_t created, std::string_view queue_id,
                              std::string_view myhostname) {
    return std::string(resent) + "Message-Id: " + message_id_value(created, queue_id, myhostname);
}

namespace {

// The full name inside a comment: parentheses and backslashes escaped so the comment
// stays one comment (what tok822_externalize does to a parsed "(name)").
std::string comment_text(std::string_view name) {
    std::string out;
    for (char c : name) {
        if (c == '\n' || c == '\r') {
            out += ' ';
            continue;
        }
        if (c == '(' || c == ')' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

// The full name as an RFC 5322 phrase: words with whitespace runs collapsed, or a
// quoted string when it holds specials or Postfix's legacy "%!" operators.
std::string phrase_text(std::string_view name) {
    static constexpr std::string_view kSpecials = "%!()<>@,;:\\\".[]";
    std::string clean;
    for (char c : name) clean += (c == '\r' || c == '\n') ? ' ' : c;
    if (clean.find_first_of(kSpecials) != std::string::npos) {
        std::string out = "\"";
        for (char c : clean) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        return out + "\"";
    }
    std::string out;
    bool space = false;
    for (char c : clean) {
        if (c == ' ' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

}  // namespace

std::string from_header(std::string_view resent, std::string_view sender,
                        const std::optional<std::string>& fullname, bool standard) {
    std::string out = std::string(resent) + "From: ";
    std::string addr = address::to_external(sender.empty() ? std::string_view("MAILER-DAEMON") : sender);
    if (sender.empty() || !fullname || fullname->empty()) return out + addr;
    if (!standard) return out + addr + " (" + comment_text(*fullname) + ")";
    std::string phrase = phrase_text(*fullname);
    if (!phrase.empty()) out += phrase + " ";
    return out + "<" + addr + ">";
}

std::string received_header(std::string_view myhostname, std::string_view mail_name, long uid,
                            std::string_view queue_id, time_t when) {
    std::string out = "Received: by ";
    out.append(myhostname).append(" (").append(mail_name).append(", from userid ");
    out.append(std::to_string(uid)).append(")\n\tid ").append(queue_id).append("; ");
    out.append(mail_date(when));
    return out;
}

}  // namespace postern::message
