// sendmail -bs: a stand-alone SMTP server on stdin/stdout for local clients (MUAs that
// speak SMTP to a pipe). Enough ESMTP for them: HELO/EHLO, MAIL (SIZE, BODY, RET, ENVID),
// RCPT (NOTIFY, ORCPT), DATA with dot-unstuffing, RSET, NOOP, VRFY, QUIT. Postfix runs
// smtpd -S for this; Postern keeps it here and hands each message to postdrop.
#include <stdio.h>
#include <unistd.h>

#include <functional>
#include <map>

#include "sendmail/line_reader.h"
#include "sendmail/postdrop_stream.h"
#include "sendmail/sendmail.h"
#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::sendmail {
namespace {

using queue::rec::kCont;
using queue::rec::kNorm;

constexpr size_t kCommandLimit = 4096;

// RFC 3461 xtext: "+XX" stands for one byte.
std::string xtext_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+' && i + 2 < s.size() + 0 && isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

class Session {
public:
    Session(const config::Config& cfg, const Options& opts)
        : cfg_(cfg), opts_(opts), in_(0),
          line_limit_(static_cast<size_t>(std::max(1L, cfg.get_int("line_length_limit")))),
          size_limit_(cfg.get_int("message_size_limit")),
          rcpt_limit_(static_cast<size_t>(cfg.get_int("smtpd_recipient_limit"))),
          error_limit_(cfg.get_int("smtpd_hard_error_limit")),
          hostname_(cfg.get("myhostname")) {}

    int run() {
        reply("220 " + cfg_.get("smtpd_banner"));
        std::string line;
        while (read_command(line)) {
            if (!dispatch(line)) return 0;
            if (errors_ >= error_limit_) {
                reply("421 4.7.0 " + hostname_ + " Error: too many errors");
                return 0;
            }
        }
        return 0;
    }

private:
    void reply(const std::string& text) {
        fputs(text.c_str(), stdout);
        fputs("\r\n", stdout);
        fflush(stdout);
    }
    void error(const std::string& text) {
        ++errors_;
        reply(text);
    }

    // One command line without CR LF; an over-long line is read to its end and refused.
    bool read_command(std::string& line) {
        std::string piece;
        char type = in_.next(line, kCommandLimit);
        if (type == 0) return false;
        bool too_long = type == kCont;
        while (type == kCont) type = in_.next(piece, kCommandLimit);
        if (too_long) line = "\x01";  // no verb matches
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return true;
    }

    bool dispatch(const std::string& line) {
        size_t sp = line.find(' ');
        std::string verb = line.substr(0, sp);
        for (char& c : verb) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
        std::string arg = sp == std::string::npos ? "" : std::string(trim(line.substr(sp + 1)));
        if (verb == "QUIT") {
            reply("221 2.0.0 Bye");
            return false;
        }
        static const std::map<std::string, void (Session::*)(const std::string&)> table = {
            {"HELO", &Session::helo}, {"EHLO", &Session::ehlo}, {"MAIL", &Session::mail},
            {"RCPT", &Session::rcpt},  {"DATA", &Session::data}, {"RSET", &Session::rset},
            {"NOOP", &Session::noop},  {"VRFY", &Session::vrfy},
        };
        auto it = table.find(verb);
        if (it == table.end()) {
            error("502 5.5.2 Error: command not recognized");
            return true;
        }
        (this->*(it->second))(arg);
        return !eof_;
    }

    void helo(const std::string& arg) {
        if (arg.empty()) return error("501 Syntax: HELO hostname");
        reset();
        reply("250 " + hostname_);
    }
    void ehlo(const std::string& arg) {
        if (arg.empty()) return error("501 Syntax: EHLO hostname");
        reset();
        reply("250-" + hostname_);
        reply("250-PIPELINING");
        if (size_limit_ > 0) reply(strprintf("250-SIZE %ld", size_limit_));
        reply("250-ENHANCEDSTATUSCODES");
        reply("250-8BITMIME");
        reply("250 DSN");
    }
    void noop(const std::string&) { reply("250 2.0.0 Ok"); }
    void rset(const std::string&) {
        reset();
        reply("250 2.0.0 Ok");
    }
    void vrfy(const std::string& arg) {
        if (arg.empty()) return error("501 5.5.4 Syntax: VRFY address");
        reply("252 2.0.0 " + arg);
    }
    void reset() {
        in_mail_ = false;
        sub_ = Submission{};
    }

    // "FROM:<addr> PARAM=VALUE ..." -> the address (internal form) and the parameters.
    static bool split_path(const std::string& arg, std::string_view keyword, std::string& addr,
                           std::vector<std::string>& params) {
        if (arg.size() < keyword.size() || !iequals(std::string_view(arg).substr(0, keyword.size()), keyword))
            return false;
        std::string_view rest = trim(std::string_view(arg).substr(keyword.size()));
        std::string_view path;
        if (!rest.empty() && rest[0] == '<') {
            size_t close = rest.find('>');
            if (close == std::string_view::npos) return false;
            path = rest.substr(1, close - 1);
            rest.remove_prefix(close + 1);
        } else {
            size_t end = rest.find(' ');
            path = rest.substr(0, end);
            rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
        }
        // A source route "@a,@b:user@c" is dropped, as RFC 5321 allows.
        if (!path.empty() && path[0] == '@' && path.find(':') != std::string_view::npos)
            path.remove_prefix(path.find(':') + 1);
        addr = address::to_internal(path);
        for (std::string_view p : split_tokens(rest, " \t")) params.emplace_back(p);
        return true;
    }

    void mail(const std::string& arg) {
        if (in_mail_) return error("503 5.5.1 Error: nested MAIL command");
        std::string addr;
        std::vector<std::string> params;
        if (!split_path(arg, "FROM:", addr, params)) return error("501 5.5.4 Syntax: MAIL FROM:<address>");
        Submission sub;
        sub.sender = addr;
        for (const std::string& p : params) {
            size_t eq = p.find('=');
            std::string name = p.substr(0, eq), value = eq == std::string::npos ? "" : p.substr(eq + 1);
            if (iequals(name, "SIZE")) {
                long n = 0;
                if (!parse_long(value, n)) return error("501 5.5.4 Bad message size syntax");
                if (size_limit_ > 0 && n > size_limit_)
                    return error("552 5.3.4 Message size exceeds fixed limit");
            } else if (iequals(name, "BODY")) {
                if (iequals(value, "8BITMIME")) sub.encoding = "8bit";
                else if (iequals(value, "7BIT")) sub.encoding = "7bit";
                else return error("501 5.5.4 Unsupported BODY parameter value");
            } else if (iequals(name, "RET")) {
                if (iequals(value, "FULL")) sub.ret = ipc::mail::kRetFull;
                else if (iequals(value, "HDRS")) sub.ret = ipc::mail::kRetHeaders;
                else return error("501 5.5.4 Bad RET parameter syntax");
            } else if (iequals(name, "ENVID")) {
                sub.envid = xtext_decode(value);
            } else if (!iequals(name, "AUTH") && !iequals(name, "SMTPUTF8")) {
                return error("555 5.5.4 Unsupported option: " + p);
            }
        }
        sub_ = std::move(sub);
        in_mail_ = true;
        reply("250 2.1.0 Ok");
    }

    void rcpt(const std::string& arg) {
        if (!in_mail_) return error("503 5.5.1 Error: need MAIL command");
        std::string addr;
        std::vector<std::string> params;
        if (!split_path(arg, "TO:", addr, params) || addr.empty())
            return error("501 5.5.4 Syntax: RCPT TO:<address>");
        if (sub_.recipients.size() >= rcpt_limit_) return reply("452 4.5.3 Error: too many recipients");
        Submission::Rcpt r{addr, 0, ""};
        for (const std::string& p : params) {
            size_t eq = p.find('=');
            std::string name = p.substr(0, eq), value = eq == std::string::npos ? "" : p.substr(eq + 1);
            if (iequals(name, "NOTIFY")) {
                r.notify = ipc::mail::parse_notify(value);
                if (!r.notify) return error("501 5.5.4 Error: Bad NOTIFY parameter syntax");
            } else if (iequals(name, "ORCPT")) {
                r.orcpt = xtext_decode(value);
            } else {
                return error("555 5.5.4 Unsupported option: " + p);
            }
        }
        sub_.recipients.push_back(std::move(r));
        reply("250 2.1.5 Ok");
    }

    void data(const std::string&) {
        if (!in_mail_ || sub_.recipients.empty()) return error("503 5.5.1 Error: need RCPT command");
        auto stream = PostdropStream::start(cfg_, opts_.verbose);
        if (!stream) {
            log::warn("%s", stream.error().c_str());
            return reply("451 4.3.0 Error: queue file write error");
        }
        write_envelope(*stream, sub_);
        reply("354 End data with <CR><LF>.<CR><LF>");
        long size = 0;
        if (!copy_data(*stream, size)) {
            eof_ = true;  // the client went away mid-message: nothing is queued
            return;
        }
        if (size_limit_ > 0 && size > size_limit_) {
            stream->abort();
            reset();
            return reply("552 5.3.4 Error: message file too big");
        }
        write_trailer(*stream, {}, 0);
        std::string reason;
        long status = stream->finish(reason);
        reset();
        if (status == 0) return reply("250 2.0.0 Ok: queued as " + stream->queue_id());
        std::string text = ipc::mail::cleanup_status_text(status);
        reply((text[0] == '4' ? "451 " : (status & ipc::mail::kCleanupStatSize) ? "552 " : "554 ") +
              text.substr(0, text.find(' ')) + " Error: " + verdict_text(status, reason));
    }

    // Message lines up to the "." line: CR LF ends a line, a leading dot is removed.
    // Text past message_size_limit is read but not kept. False at end of input.
    bool copy_data(PostdropStream& out, long& size) {
        std::string buf;
        char prev = kNorm;
        for (char type; (type = in_.next(buf, line_limit_)) != 0; prev = type) {
            bool line_start = prev != kCont;
            if (type == kNorm && !buf.empty() && buf.back() == '\r') buf.pop_back();
            if (line_start && type == kNorm && buf == ".") return true;
            std::string_view text = buf;
            if (line_start && !text.empty() && text[0] == '.') text.remove_prefix(1);
            size += static_cast<long>(text.size() + (type == kNorm ? 1 : 0));
            if (size_limit_ <= 0 || size <= size_limit_) out.put(type, text);
        }
        out.abort();
        return false;
    }

    const config::Config& cfg_;
    const Options& opts_;
    LineReader in_;
    size_t line_limit_;
    long size_limit_;
    size_t rcpt_limit_;
    long error_limit_;
    std::string hostname_;
    Submission sub_;
    bool in_mail_ = false;
    bool eof_ = false;
    long errors_ = 0;
};

}  // namespace

int smtp_session(const config::Config& cfg, const Options& opts) {
    Session session(cfg, opts);
    return session.run();
}

}  // namespace postern::sendmail
