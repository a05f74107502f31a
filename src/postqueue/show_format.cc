// The two listings postqueue prints: the Sendmail-style mailq text (Postfix's
// showq_compat.c: column widths, the "(reason)" lines, the summary) and one JSON object
// per message (showq_json.c: key order, escapes).
#include <time.h>

#include "postqueue/postqueue.h"
#include "util/base/strings.h"

namespace postern::postqueue {
namespace {

// Column layouts: short IDs keep the historical widths, long IDs a wider ID column.
constexpr const char* kShortString = "%-11s %7s %-20s %s\n";
constexpr const char* kShortSender = "%-11s %7ld %20.20s %s\n";
constexpr const char* kLongString = "%-17s %8s %-19s %s\n";
constexpr const char* kLongSender = "%-17s %8ld %19.19s %s\n";

std::string ascii_time(long when) {
    time_t t = when;
    struct tm tm;
    char buf[64];
    if (!localtime_r(&t, &tm) || !asctime_r(&tm, buf)) return "??";
    return buf;
}

// A reason line is right-aligned to column 78 when it fits.
std::string reason_line(std::string_view reason) {
    std::string shown = reason.empty() ? "reason unavailable" : std::string(reason);
    int padding = 76 - static_cast<int>(shown.size());
    if (padding < 0) padding = 0;
    return std::string(static_cast<size_t>(padding), ' ') + "(" + shown + ")\n";
}

}  // namespace

std::string json_quote(std::string_view text, bool utf8) {
    std::string out;
    for (char c : text) {
        auto ch = static_cast<unsigned char>(c);
        if (ch < 32 || ch == 127) {
            switch (c) {
                case '\b': out += "\\b"; break;
                case '\f': out += "\\f"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                default: out += strprintf("\\u%04X", ch); break;
            }
        } else {
            if (c == '\\' || c == '"') out += '\\';
            out += c;
        }
    }
    return printable(out, utf8);
}

std::string compat_heading(bool long_ids) {
    if (long_ids)
        return strprintf(kLongString, "----Queue ID-----", "--Size--", "---Arrival Time----",
                         "--Sender/Recipient------");
    return strprintf(kShortString, "-Queue ID-", "--Size--", "----Arrival Time----",
                     "-Sender/Recipient-------");
}

std::string compat_message(const ListedMessage& m, bool long_ids) {
    std::string id = m.id;
    if (m.queue == "active") id += '*';
    else if (m.queue == "hold") id += '!';
    if (m.forced_expire) id += '#';
    std::string out = strprintf(long_ids ? kLongSender : kShortSender, id.c_str(), m.size,
                                ascii_time(m.arrival).c_str(), m.sender.c_str());
    // A reason line only where the reason changes from the previous recipient's.
    std::string saved;
    for (const ListedRecipient& r : m.recipients) {
        if (r.reason != saved) {
            saved = r.reason;
            out += reason_line(saved);
        }
        out += strprintf(long_ids ? kLongString : kShortString, "", "", "", r.address.c_str());
    }
    return out;
}

std::string compat_summary(unsigned long count, unsigned long total_size) {
    if (count == 0) return "Mail queue is empty\n";
    return strprintf("\n-- %lu Kbytes in %lu Request%s.\n", total_size / 1024, count,
                     count == 1 ? "" : "s");
}

std::string json_message(const ListedMessage& m, bool utf8) {
    std::string out = "{";
    out += "\"queue_name\": \"" + json_quote(m.queue, utf8) + "\", ";
    out += "\"queue_id\": \"" + json_quote(m.id, utf8) + "\", ";
    out += strprintf("\"arrival_time\": %ld, ", m.arrival);
    out += strprintf("\"message_size\": %ld, ", m.size);
    out += strprintf("\"forced_expire\": %s, ", m.forced_expire ? "true" : "false");
    out += "\"sender\": \"" + json_quote(m.sender, utf8) + "\", ";
    out += "\"recipients\": [";
    for (size_t i = 0; i < m.recipients.size(); ++i) {
        if (i > 0) out += ", ";
        out += "{\"address\": \"" + json_quote(m.recipients[i].address, utf8) + "\"";
        if (!m.recipients[i].reason.empty())
            out += ", \"delay_reason\": \"" + json_quote(m.recipients[i].reason, utf8) + "\"";
        out += "}";
    }
    out += "]}\n";
    return out;
}

}  // namespace postern::postqueue
