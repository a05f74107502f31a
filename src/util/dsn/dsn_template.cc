#include "util/dsn/dsn_template.h"

#include <string>


namespace postern::dsn {
namespace {

// Postfix's texts (bounce_templates.c), one entry per line; '$' names are expanded.
// Every template starts with kGreeting and ends with kSignature; failure and delay
// notices ask the reader to contact the postmaster (kHelp) before the signature.
constexpr std::string_view kGreeting[] = {"This is the mail system at host $myhostname.", ""};

constexpr std::string_view kHelp[] = {
    "",
    "For further assistance, please send mail to postmaster.",
    "",
    "If you do so, please include this problem report. You can",
    "delete your own text from the attached returned message.",
};

constexpr std::string_view kSignature[] = {"", "                   The mail system"};

constexpr std::string_view kFailureText[] = {
    "I'm sorry to have to inform you that your message could not",
    "be delivered to one or more recipients. It's attached below.",
};

constexpr std::string_view kDelayText[] = {
    "####################################################################",
    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
    "####################################################################",
    "",
    "Your message could not be delivered for more than $delay_warning_time_hours hour(s).",
    "It will be retried until it is $maximal_queue_lifetime_days day(s) old.",
};

constexpr std::string_view kSuccessText[] = {
    "Your message was successfully delivered to the destination(s)",
    "listed below. If the message was delivered to mailbox you will",
    "receive no further notifications. Otherwise you may still receive",
    "notifications of mail delivery errors from other systems.",
};

constexpr std::string_view kVerifyText[] = {
    "Enclosed is the mail delivery report that you requested.",
};

std::string expand(std::string_view line, const TemplateValues& v) {
    struct Var {
        std::string_view name;
        std::string value;
    };
    // Postfix converts time values to whole units by integer division.
    const Var vars[] = {
        {"$myhostname", v.myhostname},
        {"$delay_warning_time_hours", std::to_string(v.delay_warning_time / 3600)},
        {"$maximal_queue_lifetime_days", std::to_string(v.maximal_queue_lifetime / 86400)},
    };
    std::string out;
    size_t i = 0;
    while (i < line.size()) {
        bool hit = false;
        for (const Var& var : vars) {
            if (line.substr(i, var.name.size()) == var.name) {
                out += var.value;
                i += var.name.size();
                hit = true;
                break;
            }
        }
        if (!hit) out += line[i++];
    }
    return out;
}

template <size_t N>
void append(std::vector<std::string>& out, const std::string_view (&lines)[N], const TemplateValues& v) {
    for (std::string_view line : lines) out.push_back(expand(line, v));
}

// Greeting, the kind's own text, the postmaster hint when asked, signature.
template <size_t N>
std::vector<std::string> text(const std::string_view (&body)[N], bool help, const TemplateValues& v) {
    std::vector<std::string> out;
    append(out, kGreeting, v);
    append(out, body, v);
    if (help) append(out, kHelp, v);
    append(out, kSignature, v);
    return out;
}

}  // namespace

Template default_template(NoticeKind kind, const TemplateValues& values) {
    Template t;
    switch (kind) {
    case NoticeKind::Failure:
        t.subject = "Undelivered Mail Returned to Sender";
        t.postmaster_subject = "Postmaster Copy: Undelivered Mail";
        t.text = text(kFailureText, true, values);
        break;
    case NoticeKind::Delay:
        t.subject = "Delayed Mail (still being retried)";
        t.postmaster_subject = "Postmaster Warning: Delayed Mail";
        t.text = text(kDelayText, true, values);
        break;
    case NoticeKind::Success:
        t.subject = "Successful Mail Delivery Report";
        t.text = text(kSuccessText, false, values);
        break;
    case NoticeKind::Verify:
        t.subject = "Mail Delivery Status Report";
        t.text = text(kVerifyText, false, values);
        break;
    }
    return t;
}

}  // namespace postern::dsn
