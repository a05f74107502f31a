#include "util/dsn/dsn_notice.h"

#include <cctype>
#include <ctime>

#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/dsn/dsn_text.h"

namespace postern::dsn {
namespace {

// Appends lines with LF ends.
class Writer {
public:
    void line(std::string_view text) {
        out_.append(text);
        out_ += '\n';
    }
    void wrapped(std::string_view text) {
        for (const std::string& l : wrap_line(text)) line(l);
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

bool is_8bit_encoding(std::string_view encoding) {
    return encoding == "8bit" || encoding == "8bitmime";
}

bool ascii_charset(std::string_view charset) { return iequals(charset, "us-ascii"); }

// The Content-Transfer-Encoding of part 3 ("" = none): the original's declared encoding,
// as Postfix's bounce_info->mime_encoding. SMTPUTF8 content is 8bit.
std::string mime_encoding(const Notice& n) {
    if (n.smtputf8 || is_8bit_encoding(n.encoding)) return "8bit";
    if (n.encoding == "7bit") return "7bit";
    return "";
}

// The notice as a whole is 8bit also when a template's charset is not ASCII.
std::string notice_encoding(const Notice& n, const Template& t) {
    std::string enc = mime_encoding(n);
    return enc == "7bit" && !ascii_charset(t.charset) ? "8bit" : enc;
}

std::string qualify(std::string_view address, const NoticeConfig& c) {
    if (address.find('@') != std::string_view::npos || c.myorigin.empty()) return std::string(address);
    return std::string(address) + "@" + c.myorigin;
}

// The envelope sender as the report shows it: the null sender is MAILER-DAEMON.
std::string shown_sender(const OriginalMessage& o) {
    return address::to_external(o.sender.empty() ? "MAILER-DAEMON" : o.sender);
}

// A failure notice may be built from the defer log (the message expired): 4.x.x there
// becomes 5.x.x, as in Postfix's bounce_log_read().
std::string report_status(const Notice& n, const ReportRecipient& r) {
    std::string status = is_status_code(r.status) ? r.status : "";
    switch (n.kind) {
    case NoticeKind::Failure:
        // An expired message keeps its defer-log status (Postfix: "Action: failed" with
        // "Status: 4.4.1" for a host that never answered).
        if (status.empty()) status = "5.0.0";
        break;
    case NoticeKind::Delay:
        if (status.empty()) status = "4.0.0";
        break;
    case NoticeKind::Success:
    case NoticeKind::Verify:
        if (status.empty()) status = "2.0.0";
        break;
    }
    return status;
}

std::string report_action(const Notice& n, const ReportRecipient& r) {
    if (n.kind == NoticeKind::Failure) return "failed";
    if (!r.action.empty()) return r.action;
    return n.kind == NoticeKind::Delay ? "delayed" : "delivered";
}

// "mx.example[192.0.2.1]:25" -> "mx.example": a relay with an address is a remote MTA;
// "local", "none" and the like are not.
std::string remote_mta(std::string_view relay) {
    size_t bracket = relay.find('[');
    if (bracket == std::string_view::npos || bracket == 0) return "";
    return std::string(relay.substr(0, bracket));
}

// The SMTP client's reason "host NAME[ADDR] said: TEXT (in reply to X command)" carries
// the server's reply, reported with diagnostic type "smtp" as Postfix does.
std::string smtp_diagnostic(std::string_view reason) {
    // A status report's "delivery via host[addr]:port: 250 2.0.0 Ok" (the server's reply).
    if (reason.starts_with("delivery via ") && reason.find('[') != std::string_view::npos) {
        size_t colon = reason.find("]:");
        colon = colon == std::string_view::npos ? std::string_view::npos : reason.find(": ", colon + 2);
        if (colon != std::string_view::npos) {
            std::string_view reply = reason.substr(colon + 2);
            if (reply.size() > 4 && reply[0] >= '2' && reply[0] <= '5' && isdigit(static_cast<unsigned char>(reply[1])) &&
                isdigit(static_cast<unsigned char>(reply[2])) && (reply[3] == ' ' || reply[3] == '-'))
                return std::string(trim(reply));
        }
        return "";
    }
    if (!reason.starts_with("host ")) return "";
    size_t said = reason.find(" said: ");
    if (said == std::string_view::npos) return "";
    std::string_view text = reason.substr(said + 7);
    size_t tail = text.rfind(" (in reply to ");
    if (tail != std::string_view::npos && text.ends_with(")")) text = text.substr(0, tail);
    return std::string(trim(text));
}

void write_header(Writer& w, const NoticeConfig& c, const Notice& n, const Template& t,
                  const std::string& boundary) {
    w.line("From: " + (t.from.empty() ? "MAILER-DAEMON@" + c.myorigin + " (Mail Delivery System)" : t.from));
    w.line("Subject: " + (n.postmaster_copy && !t.postmaster_subject.empty() ? t.postmaster_subject : t.subject));
    w.line("To: " + address::to_external(qualify(n.to, c)));
    w.line(std::string("Auto-Submitted: ") + (n.postmaster_copy ? "auto-generated" : "auto-replied"));
    w.line("MIME-Version: 1.0");
    w.line("Content-Type: multipart/report; report-type=delivery-status;");
    w.line("\tboundary=\"" + boundary + "\"");
    if (std::string enc = notice_encoding(n, t); !enc.empty()) w.line("Content-Transfer-Encoding: " + enc);
    // cleanup adds these only to local submissions; a notice carries its own.
    w.line("Date: " + rfc5322_date(n.now));
    if (!n.new_queue_id.empty()) {
        char stamp[32];
        time_t when = static_cast<time_t>(n.now);
        struct tm tm;
        gmtime_r(&when, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
        w.line(strprintf("Message-Id: <%s.%s@%s>", stamp, n.new_queue_id.c_str(), c.myhostname.c_str()));
    }
    w.line("");
    w.line("This is a MIME-encapsulated message.");
}

void write_human_part(Writer& w, const Notice& n, const Template& t, const std::string& boundary) {
    w.line("");
    w.line("--" + boundary);
    w.line("Content-Description: Notification");
    w.line("Content-Type: text/plain; charset=" + (n.smtputf8 && ascii_charset(t.charset) ? "utf-8" : t.charset));
    w.line("");
    if (!n.postmaster_copy)
        for (const std::string& l : t.text) w.line(l);
    if (n.recipients.empty() && n.kind == NoticeKind::Failure) {
        w.line("");
        w.line("\t--- Delivery report unavailable ---");
    }
    for (const ReportRecipient& r : n.recipients) {
        std::string addr = mask_unsafe(r.address, n.smtputf8);
        std::string reason = mask_unsafe(r.reason, n.smtputf8);
        w.line("");
        if (!r.orig_rcpt.empty() && !iequals(r.orig_rcpt, r.address))
            w.wrapped("<" + addr + "> (expanded from <" + mask_unsafe(r.orig_rcpt, n.smtputf8) + ">): " + reason);
        else
            w.wrapped("<" + addr + ">: " + reason);
    }
}

void write_recipient_fields(Writer& w, const NoticeConfig& c, const Notice& n, const ReportRecipient& r,
                            long arrival_time) {
    bool utf8 = n.smtputf8;
    w.line("");
    w.line("Final-Recipient: rfc822; " + mask_unsafe(r.address, utf8));
    if (!r.dsn_orcpt.empty())
        w.line("Original-Recipient: " + mask_unsafe(r.dsn_orcpt, utf8));
    else if (!r.orig_rcpt.empty())
        w.line("Original-Recipient: rfc822; " + mask_unsafe(r.orig_rcpt, utf8));
    w.line("Action: " + report_action(n, r));
    w.line("Status: " + report_status(n, r));
    std::string reason = mask_unsafe(r.reason, utf8);
    if (std::string mta = remote_mta(r.relay); !mta.empty()) w.wrapped("Remote-MTA: dns; " + mta);
    if (std::string smtp = smtp_diagnostic(reason); !smtp.empty())
        w.wrapped("Diagnostic-Code: smtp; " + smtp);
    else if (!reason.empty())
        w.wrapped("Diagnostic-Code: " + diagnostic_type(c.mail_name) + "; " + reason);
    if (n.kind == NoticeKind::Delay && arrival_time > 0)
        w.line("Will-Retry-Until: " + rfc5322_date(arrival_time + c.maximal_queue_lifetime));
}

void write_report_part(Writer& w, const NoticeConfig& c, const Notice& n, const OriginalMessage& o,
                       const std::string& boundary) {
    w.line("");
    w.line("--" + boundary);
    w.line("Content-Description: Delivery report");
    w.line(std::string("Content-Type: ") + (n.smtputf8 ? "message/global-delivery-status" : "message/delivery-status"));
    w.line("");
    w.line("Reporting-MTA: dns; " + c.myhostname);
    if (!n.envid.empty()) w.line("Original-Envelope-Id: " + mask_unsafe(n.envid, false));
    w.line("X-Postern-Queue-ID: " + n.queue_id);
    if (o.available) w.line("X-Postern-Sender: rfc822; " + mask_unsafe(shown_sender(o), n.smtputf8));
    if (o.arrival_time > 0) w.line("Arrival-Date: " + rfc5322_date(o.arrival_time));
    for (const ReportRecipient& r : n.recipients) write_recipient_fields(w, c, n, r, o.arrival_time);
}

void write_original_part(Writer& w, const NoticeConfig& c, const Notice& n, const OriginalMessage& o,
                         const std::string& boundary) {
    bool headers = effective_return(n.ret, o, c.bounce_size_limit) == ReturnContent::Headers;
    bool undelivered = n.kind == NoticeKind::Failure || n.kind == NoticeKind::Delay;
    w.line("");
    w.line("--" + boundary);
    w.line(std::string("Content-Description: ") + (undelivered ? "Undelivered " : "") +
           (headers ? "Message Headers" : "Message"));
    const char* type = headers ? (n.smtputf8 ? "message/global-headers" : "text/rfc822-headers")
                               : (n.smtputf8 ? "message/global" : "message/rfc822");
    w.line(std::string("Content-Type: ") + type);
    if (std::string enc = mime_encoding(n); !enc.empty()) w.line("Content-Transfer-Encoding: " + enc);
    w.line("");
    if (!o.available) {
        w.line("\t--- Undelivered message unavailable ---");
    } else {
        // cleanup strips Return-Path; the copy gets one back for the sender's filters.
        w.line("Return-Path: <" + (o.sender.empty() ? std::string() : address::to_external(o.sender)) + ">");
        for (const std::string& l : o.lines) {
            if (headers && !is_header_block_line(l)) break;
            w.line(l);
        }
    }
    w.line("");
    w.line("--" + boundary + "--");
}

}  // namespace

bool notify_wanted(long notify, long filter) {
    return filter == kNotifyOverride || notify == 0 || (notify & filter) != 0;
}

ReturnContent effective_return(ReturnContent requested, const OriginalMessage& original,
                               long bounce_size_limit) {
    if (requested == ReturnContent::Headers) return requested;
    if (bounce_size_limit > 0 && original.available &&
        (original.content_size <= 0 || original.content_size > bounce_size_limit))
        return ReturnContent::Headers;
    return requested;
}

std::string compose_notice(const NoticeConfig& config, const Notice& notice,
                           const OriginalMessage& original) {
    const std::optional<Template>& custom = config.templates.of(notice.kind);
    Template t = custom ? *custom
                        : default_template(notice.kind, {config.myhostname, config.delay_warning_time,
                                                         config.maximal_queue_lifetime});
    std::string boundary = notice.queue_id + "." + std::to_string(notice.now) + "/" + config.myhostname;
    Writer w;
    write_header(w, config, notice, t, boundary);
    write_human_part(w, notice, t, boundary);
    write_report_part(w, config, notice, original, boundary);
    write_original_part(w, config, notice, original, boundary);
    return w.take();
}

}  // namespace postern::dsn
