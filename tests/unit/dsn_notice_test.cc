#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "util/dsn/dsn_notice.h"
#include "util/ipc/mail_proto.h"

using namespace postern::dsn;

namespace {

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        REQUIRE(nl != std::string::npos);  // every line ends in LF
        out.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return out;
}

// A MIME entity: header fields (unfolded, names lower-cased) and body lines.
struct Entity {
    std::map<std::string, std::string> headers;
    std::vector<std::string> body;
};

Entity parse_entity(const std::vector<std::string>& lines, size_t begin, size_t end) {
    Entity e;
    size_t i = begin;
    std::string last;
    for (; i < end && !lines[i].empty(); ++i) {
        if (lines[i][0] == ' ' || lines[i][0] == '\t') {
            e.headers[last] += " " + lines[i].substr(1);
            continue;
        }
        size_t colon = lines[i].find(':');
        REQUIRE(colon != std::string::npos);
        last.clear();
        for (char c : lines[i].substr(0, colon)) last += static_cast<char>(std::tolower(c));
        size_t v = colon + 1;
        while (v < lines[i].size() && lines[i][v] == ' ') ++v;
        e.headers[last] = lines[i].substr(v);
    }
    for (++i; i < end; ++i) e.body.push_back(lines[i]);
    return e;
}

struct Parsed {
    Entity top;
    std::vector<Entity> parts;
    std::string boundary;
};

Parsed parse_notice(const std::string& text) {
    auto lines = split_lines(text);
    Parsed p;
    p.top = parse_entity(lines, 0, lines.size());
    const std::string& ct = p.top.headers["content-type"];
    size_t b = ct.find("boundary=\"");
    REQUIRE(b != std::string::npos);
    p.boundary = ct.substr(b + 10, ct.find('"', b + 10) - b - 10);
    std::vector<size_t> marks;
    size_t close = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
        if (lines[i] == "--" + p.boundary) marks.push_back(i);
        if (lines[i] == "--" + p.boundary + "--") close = i;
    }
    REQUIRE(close > 0);
    CHECK(close == lines.size() - 1);
    marks.push_back(close);
    for (size_t k = 0; k + 1 < marks.size(); ++k) {
        // The blank line before a boundary belongs to the boundary (RFC 2046).
        size_t end = marks[k + 1];
        if (end > 0 && lines[end - 1].empty()) --end;
        p.parts.push_back(parse_entity(lines, marks[k] + 1, end));
    }
    return p;
}

// The delivery-status body as groups of fields (per-message first).
std::vector<std::map<std::string, std::string>> dsn_groups(const Entity& part) {
    std::vector<std::map<std::string, std::string>> groups(1);
    std::string last;
    for (const std::string& l : part.body) {
        if (l.empty()) {
            groups.emplace_back();
            continue;
        }
        if (l[0] == ' ' || l[0] == '\t') {
            groups.back()[last] += " " + l.substr(l.find_first_not_of(" \t"));
            continue;
        }
        size_t colon = l.find(": ");
        REQUIRE(colon != std::string::npos);
        last = l.substr(0, colon);
        groups.back()[last] = l.substr(colon + 2);
    }
    return groups;
}

NoticeConfig config() {
    NoticeConfig c;
    c.myhostname = "host.example.test";
    c.myorigin = "example.test";
    c.delay_warning_time = 4 * 3600;
    c.maximal_queue_lifetime = 5 * 86400;
    c.bounce_size_limit = 50000;
    return c;
}

OriginalMessage original() {
    OriginalMessage o;
    o.available = true;
    o.sender = "alice@example.test";
    o.arrival_time = 1700000000;
    o.content_size = 100;
    o.lines = {"From: Alice <alice@example.test>", "Subject: hello", "\tthere", "", "body line 1",
               "Subject: not a header", "body line 3"};
    return o;
}

ReportRecipient failed_rcpt() {
    ReportRecipient r;
    r.address = "bob@remote.test";
    r.orig_rcpt = "bob@remote.test";
    r.status = "5.1.1";
    r.action = "failed";
    r.reason = "unknown user: \"bob\"";
    r.relay = "local";
    return r;
}

Notice failure_notice() {
    Notice n;
    n.kind = NoticeKind::Failure;
    n.to = "alice@example.test";
    n.queue_id = "4AbCdEf1234";
    n.encoding = "7bit";
    n.now = 1700000100;
    n.new_queue_id = "5XyZ";
    n.recipients = {failed_rcpt()};
    return n;
}

}  // namespace

TEST_CASE("a non-delivery notice is a three-part multipart/report", "[dsn]") {
    std::string text = compose_notice(config(), failure_notice(), original());
    Parsed p = parse_notice(text);
    CHECK(p.top.headers["from"] == "MAILER-DAEMON@example.test (Mail Delivery System)");
    CHECK(p.top.headers["subject"] == "Undelivered Mail Returned to Sender");
    CHECK(p.top.headers["to"] == "alice@example.test");
    CHECK(p.top.headers["auto-submitted"] == "auto-replied");
    CHECK(p.top.headers["mime-version"] == "1.0");
    CHECK(p.top.headers["content-type"].starts_with("multipart/report; report-type=delivery-status;"));
    CHECK(p.boundary == "4AbCdEf1234.1700000100/host.example.test");
    CHECK(p.top.headers["content-transfer-encoding"] == "7bit");
    CHECK(p.top.headers["message-id"] == "<20231114221500.5XyZ@host.example.test>");
    CHECK(p.top.headers.count("date") == 1);
    REQUIRE(p.parts.size() == 3);

    const Entity& human = p.parts[0];
    CHECK(human.headers.at("content-type") == "text/plain; charset=us-ascii");
    CHECK(human.headers.at("content-description") == "Notification");
    REQUIRE(human.body.size() > 10);
    CHECK(human.body[0] == "This is the mail system at host host.example.test.");
    CHECK(human.body[2] == "I'm sorry to have to inform you that your message could not");
    CHECK(human.body.back() == "<bob@remote.test>: unknown user: \"bob\"");

    const Entity& report = p.parts[1];
    CHECK(report.headers.at("content-type") == "message/delivery-status");
    auto groups = dsn_groups(report);
    REQUIRE(groups.size() == 2);
    CHECK(groups[0]["Reporting-MTA"] == "dns; host.example.test");
    CHECK(groups[0]["X-Postern-Queue-ID"] == "4AbCdEf1234");
    CHECK(groups[0]["X-Postern-Sender"] == "rfc822; alice@example.test");
    CHECK(groups[0].count("Arrival-Date") == 1);
    CHECK(groups[0].count("Original-Envelope-Id") == 0);
    CHECK(groups[1]["Final-Recipient"] == "rfc822; bob@remote.test");
    CHECK(groups[1]["Original-Recipient"] == "rfc822; bob@remote.test");
    CHECK(groups[1]["Action"] == "failed");
    CHECK(groups[1]["Status"] == "5.1.1");
    CHECK(groups[1]["Diagnostic-Code"] == "X-Postfix; unknown user: \"bob\"");
    CHECK(groups[1].count("Remote-MTA") == 0);

    const Entity& returned = p.parts[2];
    CHECK(returned.headers.at("content-type") == "message/rfc822");
    CHECK(returned.headers.at("content-description") == "Undelivered Message");
    CHECK(returned.headers.at("content-transfer-encoding") == "7bit");
    REQUIRE(returned.body.size() == 8);
    CHECK(returned.body[0] == "Return-Path: <alice@example.test>");
    CHECK(returned.body[1] == "From: Alice <alice@example.test>");
    CHECK(returned.body[7] == "body line 3");
}

TEST_CASE("RET=HDRS returns text/rfc822-headers without the body", "[dsn]") {
    Notice n = failure_notice();
    n.ret = ReturnContent::Headers;
    Parsed p = parse_notice(compose_notice(config(), n, original()));
    REQUIRE(p.parts.size() == 3);
    CHECK(p.parts[2].headers.at("content-type") == "text/rfc822-headers");
    CHECK(p.parts[2].headers.at("content-description") == "Undelivered Message Headers");
    REQUIRE(p.parts[2].body.size() == 4);
    CHECK(p.parts[2].body[2] == "Subject: hello");
    CHECK(p.parts[2].body[3] == "\tthere");
}

TEST_CASE("a message over bounce_size_limit is returned as headers only", "[dsn]") {
    OriginalMessage o = original();
    o.content_size = 60000;
    CHECK(effective_return(ReturnContent::Full, o, 50000) == ReturnContent::Headers);
    CHECK(effective_return(ReturnContent::Full, o, 0) == ReturnContent::Full);
    Parsed p = parse_notice(compose_notice(config(), failure_notice(), o));
    CHECK(p.parts[2].headers.at("content-type") == "text/rfc822-headers");
}

TEST_CASE("a status from the defer log stays as it is in a non-delivery notice", "[dsn]") {
    Notice n = failure_notice();
    n.recipients[0].status = "4.4.1";
    n.recipients[0].action = "delayed";
    n.recipients[0].relay = "mx.remote.test[192.0.2.7]:25";
    n.recipients[0].reason = "host mx.remote.test[192.0.2.7] said: 450 4.2.0 mailbox busy (in reply to RCPT TO command)";
    auto groups = dsn_groups(parse_notice(compose_notice(config(), n, original())).parts[1]);
    CHECK(groups[1]["Status"] == "4.4.1");
    CHECK(groups[1]["Action"] == "failed");
    CHECK(groups[1]["Remote-MTA"] == "dns; mx.remote.test");
    CHECK(groups[1]["Diagnostic-Code"] == "smtp; 450 4.2.0 mailbox busy");
}

TEST_CASE("DSN ORCPT and aliases show as Original-Recipient and 'expanded from'", "[dsn]") {
    Notice n = failure_notice();
    n.envid = "ENV-42";
    n.recipients[0].orig_rcpt = "staff@example.test";
    n.recipients[0].dsn_orcpt = "rfc822;staff@example.test";
    Parsed p = parse_notice(compose_notice(config(), n, original()));
    CHECK(p.parts[0].body.back() == "<bob@remote.test> (expanded from <staff@example.test>): unknown user: \"bob\"");
    auto groups = dsn_groups(p.parts[1]);
    CHECK(groups[0]["Original-Envelope-Id"] == "ENV-42");
    CHECK(groups[1]["Original-Recipient"] == "rfc822;staff@example.test");
}

TEST_CASE("long reasons are wrapped to 79 columns in both report parts", "[dsn]") {
    Notice n = failure_notice();
    n.recipients[0].reason = "";
    for (int i = 0; i < 40; ++i) n.recipients[0].reason += "word" + std::to_string(i) + " ";
    std::string text = compose_notice(config(), n, original());
    for (const std::string& line : split_lines(text)) CHECK(line.size() <= 79);
    Parsed p = parse_notice(text);
    auto groups = dsn_groups(p.parts[1]);
    CHECK(groups[1]["Diagnostic-Code"] == "X-Postfix; " + n.recipients[0].reason.substr(0, n.recipients[0].reason.size() - 1));
}

TEST_CASE("8-bit originals are declared 8bit; no declared encoding means no header", "[dsn]") {
    Notice n = failure_notice();
    n.encoding = "8bitmime";
    Parsed p = parse_notice(compose_notice(config(), n, original()));
    CHECK(p.top.headers["content-transfer-encoding"] == "8bit");
    CHECK(p.parts[2].headers.at("content-transfer-encoding") == "8bit");
    n.encoding = "";
    Parsed none = parse_notice(compose_notice(config(), n, original()));
    CHECK(none.top.headers.count("content-transfer-encoding") == 0);
    CHECK(none.parts[2].headers.count("content-transfer-encoding") == 0);
}

TEST_CASE("control and 8-bit bytes in reasons are masked unless SMTPUTF8", "[dsn]") {
    Notice n = failure_notice();
    n.recipients[0].reason = "bad\x01 caf\xc3\xa9";
    std::string text = compose_notice(config(), n, original());
    CHECK(text.find("bad? caf??") != std::string::npos);
    n.smtputf8 = true;
    Parsed p = parse_notice(compose_notice(config(), n, original()));
    CHECK(p.parts[0].headers.at("content-type") == "text/plain; charset=utf-8");
    CHECK(p.parts[1].headers.at("content-type") == "message/global-delivery-status");
    CHECK(p.parts[2].headers.at("content-type") == "message/global");
    CHECK(dsn_groups(p.parts[1])[1]["Diagnostic-Code"] == "X-Postfix; bad? caf\xc3\xa9");
}

TEST_CASE("an unavailable original or log is said so in the notice", "[dsn]") {
    Notice n = failure_notice();
    n.recipients.clear();
    Parsed p = parse_notice(compose_notice(config(), n, OriginalMessage{}));
    CHECK(p.parts[0].body.back() == "\t--- Delivery report unavailable ---");
    CHECK(p.parts[2].body == std::vector<std::string>{"\t--- Undelivered message unavailable ---"});
    CHECK(dsn_groups(p.parts[1])[0].count("X-Postern-Sender") == 0);
}

TEST_CASE("the null sender of a returned message is shown as MAILER-DAEMON", "[dsn]") {
    OriginalMessage o = original();
    o.sender = "";
    Notice n = failure_notice();
    n.postmaster_copy = true;
    n.to = "postmaster";
    Parsed p = parse_notice(compose_notice(config(), n, o));
    CHECK(p.top.headers["subject"] == "Postmaster Copy: Undelivered Mail");
    CHECK(p.top.headers["to"] == "postmaster@example.test");
    CHECK(p.top.headers["auto-submitted"] == "auto-generated");
    // No boiler-plate in a postmaster copy: only the recipient lines.
    CHECK(p.parts[0].body == std::vector<std::string>{"", "<bob@remote.test>: unknown user: \"bob\""});
    CHECK(dsn_groups(p.parts[1])[0]["X-Postern-Sender"] == "rfc822; MAILER-DAEMON");
    CHECK(p.parts[2].body[0] == "Return-Path: <>");
}

TEST_CASE("a delay warning says how long and until when", "[dsn]") {
    Notice n = failure_notice();
    n.kind = NoticeKind::Delay;
    n.ret = ReturnContent::Headers;
    n.recipients[0].status = "4.4.1";
    n.recipients[0].action = "delayed";
    Parsed p = parse_notice(compose_notice(config(), n, original()));
    CHECK(p.top.headers["subject"] == "Delayed Mail (still being retried)");
    bool found = false;
    for (const auto& l : p.parts[0].body)
        found |= l == "Your message could not be delivered for more than 4 hour(s).";
    CHECK(found);
    auto groups = dsn_groups(p.parts[1]);
    CHECK(groups[1]["Action"] == "delayed");
    CHECK(groups[1]["Status"] == "4.4.1");
    CHECK(groups[1].count("Will-Retry-Until") == 1);
    CHECK(p.parts[2].headers.at("content-description") == "Undelivered Message Headers");
}

TEST_CASE("a success notice reports delivered recipients", "[dsn]") {
    Notice n = failure_notice();
    n.kind = NoticeKind::Success;
    n.ret = ReturnContent::Headers;
    n.recipients[0].status = "2.0.0";
    n.recipients[0].action = "delivered";
    n.recipients[0].reason = "delivered to mailbox";
    Parsed p = parse_notice(compose_notice(config(), n, original()));
    CHECK(p.top.headers["subject"] == "Successful Mail Delivery Report");
    auto groups = dsn_groups(p.parts[1]);
    CHECK(groups[1]["Action"] == "delivered");
    CHECK(groups[1]["Status"] == "2.0.0");
    CHECK(p.parts[2].headers.at("content-description") == "Message Headers");
}

TEST_CASE("NOTIFY decides who is reported", "[dsn]") {
    using namespace postern::ipc::mail;
    CHECK(notify_wanted(0, kNotifyFailure));
    CHECK(notify_wanted(kNotifyFailure | kNotifyDelay, kNotifyFailure));
    CHECK_FALSE(notify_wanted(kNotifyNever, kNotifyFailure));
    CHECK_FALSE(notify_wanted(kNotifySuccess, kNotifyFailure));
    CHECK_FALSE(notify_wanted(kNotifyFailure, kNotifyDelay));
    CHECK(notify_wanted(kNotifyNever, kNotifyOverride));
}

TEST_CASE("a bounce_template_file replaces the texts it defines", "[dsn]") {
    std::string file =
        "# site templates\n"
        "\n"
        "failure_template = <<EOF\n"
        "Charset: utf-8\n"
        "Subject: Nicht zustellbar\n"
        "\n"
        "Hallo von $myhostname, ${mail_name} und $$5.\n"
        "Wir versuchen es $maximal_queue_lifetime_days Tage lang.\n"
        "EOF\n";
    auto lookup = [](std::string_view name) -> std::optional<std::string> {
        if (name == "myhostname") return "host.example.test";
        if (name == "mail_name") return "Postern";
        if (name == "maximal_queue_lifetime_days") return "5";
        return std::nullopt;
    };
    auto parsed = parse_template_file(file, lookup, {"host.example.test", 0, 5 * 86400});
    REQUIRE(parsed.ok());
    REQUIRE(parsed->failure.has_value());
    CHECK_FALSE(parsed->delay.has_value());
    CHECK(parsed->failure->subject == "Nicht zustellbar");
    CHECK(parsed->failure->postmaster_subject == "Postmaster Copy: Undelivered Mail");
    CHECK(parsed->failure->text == std::vector<std::string>{"Hallo von host.example.test, Postern und $5.",
                                                            "Wir versuchen es 5 Tage lang."});
    NoticeConfig c = config();
    c.templates = *parsed;
    Parsed p = parse_notice(compose_notice(c, failure_notice(), original()));
    CHECK(p.top.headers["subject"] == "Nicht zustellbar");
    CHECK(p.top.headers["content-transfer-encoding"] == "8bit");
    CHECK(p.parts[0].headers.at("content-type") == "text/plain; charset=utf-8");
    CHECK(p.parts[0].body[0] == "Hallo von host.example.test, Postern und $5.");
    // Kinds the file does not define keep the built-in text.
    Notice delay = failure_notice();
    delay.kind = NoticeKind::Delay;
    CHECK(parse_notice(compose_notice(c, delay, original())).top.headers["subject"] ==
          "Delayed Mail (still being retried)");
}

TEST_CASE("a bad bounce_template_file is refused with its line", "[dsn]") {
    auto none = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
    TemplateValues v{"h", 0, 0};
    CHECK(parse_template_file("bogus_template = <<EOF\nEOF\n", none, v).error() ==
          "bounce template line 1: unknown template name \"bogus_template\"");
    CHECK(parse_template_file("failure_template = <<EOF\nSubject: x\n", none, v).error() ==
          "bounce template line 2: missing \"EOF\" at the end of the template");
    CHECK(parse_template_file("failure_template = <<EOF\nX-Foo: y\n\nEOF\n", none, v).error() ==
          "bounce template line 2: unknown header \"X-Foo\"");
    CHECK(parse_template_file("failure_template = <<EOF\n\nhost $nosuch\nEOF\n", none, v).error() ==
          "bounce template line 3: unknown parameter: $nosuch");
    CHECK(parse_template_file("just text\n", none, v).error() ==
          "bounce template line 1: expected \"name = <<EOF\"");
}
