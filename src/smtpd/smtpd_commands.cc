// The session-level commands: HELO/EHLO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY, ETRN, and
// the client facts they rely on. Replies are Postfix's smtpd(8) texts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "smtpd/smtpd_anvil.h"
#include "smtpd/smtpd_params.h"
#include "smtpd/smtpd_session.h"
#include "util/base/strings.h"
#include "util/daemon/server.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::smtpd {

namespace proto = ipc::mail;

namespace {

void address_of(const sockaddr_storage& ss, std::string& addr, std::string& port) {
    char buf[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
        inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
        port = std::to_string(ntohs(in.sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
        inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf);
        port = std::to_string(ntohs(in6.sin6_port));
    }
    addr = buf;
    // An IPv4 client of a dual-stack socket is logged as IPv4, as Postfix does.
    if (addr.rfind("::ffff:", 0) == 0 && addr.find('.') != std::string::npos) addr.erase(0, 7);
}

}  // namespace

// The addresses of both ends; the names follow from dns::lookup_client_names when the
// session starts (smtpd_peername_lookup).
void Session::set_client_facts() {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(conn_.fd(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
        address_of(ss, facts_.client.address, facts_.client.port);
    len = sizeof ss;
    if (getsockname(conn_.fd(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
        address_of(ss, facts_.client.server_address, facts_.client.server_port);
    if (facts_.client.address.empty()) facts_.client.address = "127.0.0.1";  // a UNIX socket
}

// Runs a restriction check; `done` runs at once when the engine answers at once,
// otherwise input is paused until it answers and the loop resumes after `done`.
void Session::check(CheckPoint point, std::function<void(CheckOutcome)> done) {
    if (check_ == nullptr) {
        done(CheckOutcome{});
        return;
    }
    auto sync = std::make_shared<bool>(true);
    auto answered = std::make_shared<bool>(false);
    std::weak_ptr<bool> alive = alive_;
    check_->check(point, facts_, [this, sync, answered, alive, done](CheckOutcome outcome) {
        *answered = true;
        if (*sync) {
            done(std::move(outcome));
            return;
        }
        if (alive.expired()) return;
        wait_end();
        done(std::move(outcome));
        if (!alive.expired()) pump();
    });
    *sync = false;
    if (!*answered) wait_begin();
}

std::string Session::ehlo_reply() const {
    std::vector<std::string> lines{cfg_.myhostname};
    auto offer = [&](const char* key, std::string line) {
        if (cfg_.keyword(key)) lines.push_back(std::move(line));
    };
    offer("pipelining", "PIPELINING");
    offer("size", cfg_.message_size_limit > 0 ? "SIZE " + std::to_string(cfg_.message_size_limit) : "SIZE");
    if (!cfg_.disable_vrfy) offer("vrfy", "VRFY");
    offer("etrn", "ETRN");
    if (cfg_.tls_offered() && !facts_.tls.active) offer("starttls", "STARTTLS");
    std::string mechs = auth_mechanisms();
    if (!mechs.empty()) {
        offer("auth", "AUTH " + mechs);
        if (cfg_.broken_sasl_auth_clients) offer("auth", "AUTH=" + mechs);
    }
    offer("enhancedstatuscodes", "ENHANCEDSTATUSCODES");
    offer("8bitmime", "8BITMIME");
    offer("dsn", "DSN");
    if (cfg_.smtputf8_enable) offer("smtputf8", "SMTPUTF8");
    offer("chunking", "CHUNKING");
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i)
        out += (i + 1 < lines.size() ? "250-" : "250 ") + lines[i] + (i + 1 < lines.size() ? "\n" : "");
    return out;
}

// HELO and EHLO: the same but for the protocol name and the reply.
void Session::helo_common(std::string_view args, bool ehlo) {
    if (args.empty()) return reply(ehlo ? "501 Syntax: EHLO hostname" : "501 Syntax: HELO hostname");
    // HELO/EHLO in the middle of a transaction resets it (RFC 5321 4.1.4).
    reset_transaction();
    facts_.helo_name.assign(args.substr(0, args.find(' ')));
    ehlo_ = ehlo;
    std::string proto = ehlo ? "ESMTP" : "SMTP";
    if (facts_.tls.active) proto += "S";
    if (facts_.sasl.authenticated()) proto += "A";
    facts_.protocol = proto;
    check(CheckPoint::Helo, [this, ehlo](CheckOutcome outcome) {
        if (outcome.rejected()) {
            facts_.helo_name.clear();
            return reply(outcome.reply);
        }
        reply(ehlo ? ehlo_reply() : "250 " + cfg_.myhostname);
    });
}

void Session::cmd_helo(std::string_view args) { helo_common(args, false); }
void Session::cmd_ehlo(std::string_view args) { helo_common(args, true); }

// The MAIL FROM parameters; returns the error reply or "".
std::string Session::mail_params(const PathArgs& path) {
    auto& t = facts_.transaction;
    for (size_t i = 0; i < path.params.size(); ++i) {
        const auto& [name, value] = path.params[i];
        const std::string& arg = path.raw_params[i];
        if (name == "SIZE") {
            long n = 0;
            if (!parse_long(value, n) || n < 0) return "501 5.5.4 Bad message size syntax";
            t.size = n;
        } else if (name == "BODY" && (iequals(value, "8BITMIME") || iequals(value, "7BIT"))) {
            t.body_type = iequals(value, "7BIT") ? "7BIT" : "8BITMIME";
        } else if (name == "SMTPUTF8" && value.empty() && cfg_.smtputf8_enable) {
            t.smtputf8 = true;
        } else if (name == "RET") {
            if (t.ret != 0) return "501 5.5.4 Bad RET parameter syntax";
            if (iequals(value, "FULL")) t.ret = proto::kRetFull;
            else if (iequals(value, "HDRS")) t.ret = proto::kRetHeaders;
            else return "501 5.5.4 Bad RET parameter syntax";
        } else if (name == "ENVID") {
            auto decoded = xtext_decode(value);
            if (!t.envid.empty() || !decoded || decoded->empty() || decoded->size() > 100)
                return "501 5.5.4 Bad ENVID parameter syntax";
            t.envid = *decoded;
        } else if (name == "AUTH") {
            if (!facts_.sasl.sender.empty()) return "503 5.5.4 Error: multiple AUTH= options";
            auto decoded = xtext_decode(value);
            if (!decoded) return "501 5.5.4 Bad AUTH parameter syntax";
            // RFC 4954 5: accepted only from an authenticated client, ignored otherwise.
            if (facts_.sasl.authenticated()) facts_.sasl.sender = *decoded == "<>" ? "" : *decoded;
        } else {
            return "555 5.5.4 Unsupported option: " + arg;
        }
    }
    return "";
}

void Session::cmd_mail(std::string_view args) {
    auto& t = facts_.transaction;
    // smtpd_helo_required applies to MAIL only, as in Postfix.
    if (cfg_.helo_required && facts_.helo_name.empty()) return reply("503 5.5.1 Error: send HELO/EHLO first");
    if (t.mail_given) return reply("503 5.5.1 Error: nested MAIL command");
    if (bdat_ || bdat_failed_) return reply("503 5.5.1 Error: MAIL after BDAT");
    if (!has_path_keyword(args, "FROM:")) return reply("501 5.5.4 Syntax: MAIL FROM:<address>");
    auto path = parse_path(args, "FROM:", cfg_.strict_rfc821);
    if (!path || !valid_mailbox(path->address)) return reply("501 5.1.7 Bad sender address syntax");
    if (std::string err = mail_params(*path); !err.empty()) {
        reset_transaction();
        return reply(err);
    }
    if (cfg_.strict_smtputf8 && !t.smtputf8 && !all_ascii(path->address)) {
        reset_transaction();
        return reply("553 5.6.7 Must declare SMTPUTF8 to send unicode address");
    }
    if (cfg_.message_size_limit > 0 && t.size > cfg_.message_size_limit) {
        reset_transaction();
        return reply("552 5.3.4 Message size exceeds fixed limit");
    }
    if (limits_ != nullptr) {
        if (auto refused = limits_->check_mail()) {
            reset_transaction();
            return reply(refused->text);
        }
    }
    t.sender_orig = path->address;
    t.sender = internal_address(path->address);
    check(CheckPoint::Mail, [this](CheckOutcome outcome) { mail_checked(std::move(outcome)); });
}

void Session::mail_checked(CheckOutcome outcome) {
    if (outcome.rejected()) {
        reset_transaction();
        return reply(outcome.reply);
    }
    facts_.transaction.mail_given = true;
    arrival_ = static_cast<long>(time(nullptr));
    if (!cfg_.delay_open) {
        open_queue_file([this](bool ok) {
            if (ok) return reply("250 2.1.0 Ok");
            reset_transaction();
            reply("451 4.3.0 Error: queue file write error");
        });
        return;
    }
    reply("250 2.1.0 Ok");
}

std::string Session::rcpt_params(const PathArgs& path, RecipientFacts& r) {
    for (size_t i = 0; i < path.params.size(); ++i) {
        const auto& [name, value] = path.params[i];
        if (name == "NOTIFY") {
            r.notify = proto::parse_notify(value);
            if (r.notify == 0) return "501 5.5.4 Error: Bad NOTIFY parameter syntax";
        } else if (name == "ORCPT") {
            size_t semi = value.find(';');
            auto decoded = semi == std::string::npos ? std::nullopt : xtext_decode(value.substr(semi + 1));
            if (!decoded || !r.dsn_orcpt.empty() || semi == 0)
                return "501 5.5.4 Error: Bad ORCPT parameter syntax";
            r.dsn_orcpt = value.substr(0, semi) + ";" + *decoded;
        } else {
            return "555 5.5.4 Unsupported option: " + path.raw_params[i];
        }
    }
    return "";
}

void Session::cmd_rcpt(std::string_view args) {
    auto& t = facts_.transaction;
    if (!t.mail_given) return reply("503 5.5.1 Error: need MAIL command");
    if (bdat_ || bdat_failed_) return reply("503 5.5.1 Error: RCPT after BDAT");
    if (!has_path_keyword(args, "TO:")) return reply("501 5.5.4 Syntax: RCPT TO:<address>");
    auto path = parse_path(args, "TO:", cfg_.strict_rfc821);
    if (!path || path->address.empty() || !valid_mailbox(path->address))
        return reply("501 5.1.3 Bad recipient address syntax");
    if (static_cast<long>(t.recipients.size()) >= cfg_.recipient_limit)
        return reply("452 4.5.3 Error: too many recipients");
    if (cfg_.strict_smtputf8 && !t.smtputf8 && !all_ascii(path->address))
        return reply("553 5.6.7 Must declare SMTPUTF8 to send unicode address");
    RecipientFacts r;
    if (std::string err = rcpt_params(*path, r); !err.empty()) return reply(err);
    if (limits_ != nullptr) {
        if (auto refused = limits_->check_rcpt()) return reply(refused->text);
    }
    r.orig = path->address;
    r.address = internal_address(path->address);
    t.recipient = r.address;
    t.recipient_orig = r.orig;
    check(CheckPoint::Rcpt, [this, r](CheckOutcome outcome) {
        facts_.transaction.recipient.clear();
        facts_.transaction.recipient_orig.clear();
        if (outcome.rejected()) return reply(outcome.reply);
        facts_.transaction.recipients.push_back(r);
        if (cleanup_ == nullptr && !cleanup_failed_) {
            open_queue_file([this](bool ok) {
                if (ok) return reply("250 2.1.5 Ok");
                facts_.transaction.recipients.pop_back();
                reply("451 4.3.0 Error: queue file write error");
            });
            return;
        }
        reply("250 2.1.5 Ok");
    });
}

void Session::reset_transaction() {
    facts_.transaction = TransactionFacts{};
    facts_.sasl.sender.clear();
    cleanup_.reset();  // cleanup removes the unfinished queue file
    cleanup_failed_ = false;
    in_data_ = bdat_ = bdat_last_ = bdat_failed_ = false;
    content_bare_lf_ = size_exceeded_ = bdat_partial_line_ = false;
    message_bytes_ = 0;
    reader_.end_chunks();
    if (check_ != nullptr) check_->reset_transaction();
}

void Session::cmd_rset(std::string_view args) {
    if (!args.empty()) return reply("501 5.5.4 Syntax: RSET");
    reset_transaction();
    reply("250 2.0.0 Ok");
}

void Session::cmd_noop(std::string_view) { reply("250 2.0.0 Ok"); }

void Session::cmd_quit(std::string_view) {
    reply("221 2.0.0 Bye");
    flush();
    close("");
}

void Session::cmd_vrfy(std::string_view args) {
    if (cfg_.disable_vrfy) return reply("502 5.5.1 VRFY command is disabled");
    if (args.empty()) return reply("501 5.5.4 Syntax: VRFY address");
    std::string addr(args);
    if (addr.size() >= 2 && addr.front() == '<' && addr.back() == '>') addr = addr.substr(1, addr.size() - 2);
    facts_.transaction.recipient = internal_address(addr);
    facts_.transaction.recipient_orig = addr;
    check(CheckPoint::Vrfy, [this, addr](CheckOutcome outcome) {
        facts_.transaction.recipient.clear();
        facts_.transaction.recipient_orig.clear();
        if (outcome.rejected()) return reply(outcome.reply);
        reply("252 2.0.0 " + addr);
    });
}

void Session::cmd_etrn(std::string_view args) {
    if (facts_.helo_name.empty()) return reply("503 Error: send HELO/EHLO first");
    if (facts_.transaction.mail_given) return reply("503 Error: MAIL transaction in progress");
    if (args.empty()) return reply("500 Syntax: ETRN domain");
    facts_.etrn_domain.assign(args[0] == '@' ? args.substr(1) : args);
    check(CheckPoint::Etrn, [this](CheckOutcome outcome) {
        if (outcome.rejected()) return reply(outcome.reply);
        // No fast flush service yet: Postfix's answer for a domain it cannot flush.
        reply("459 <" + facts_.etrn_domain + ">: service unavailable");
    });
}

}  // namespace postern::smtpd
