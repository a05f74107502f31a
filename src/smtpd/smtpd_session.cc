// The session loop: input -> reader events -> command table; replies, error counting
// and the error sleep, the idle timeout, and the log lines of connect and disconnect.
#include "smtpd/smtpd_session.h"

#include <event2/event.h>

#include <cstring>
#include <ctime>
#include <map>

#include "smtpd/smtpd_anvil.h"
#include "smtpd/smtpd_params.h"
#include "smtpd/smtpd_reply_footer.h"
#include "util/base/strings.h"
#include "util/dns/client_names.h"
#include "util/daemon/server.h"
#include "util/log/log.h"

namespace postern::smtpd {

namespace {

// Postfix's escape(): C escapes for control characters, octal for other odd bytes.
std::string escape_text(std::string_view in) {
    std::string out;
    for (unsigned char c : in) {
        switch (c) {
            case '\a': out += "\\a"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\v': out += "\\v"; break;
            case '\\': out += "\\\\"; break;
            default:
                if (c < 0x20 || c >= 0x7f)
                    out += strprintf("\\%03o", c);
                else
                    out.push_back(static_cast<char>(c));
        }
    }
    return out;
}

}  // namespace

// In Postfix's order: the disconnect line lists counters in this order.
const Session::Command Session::kCommands[] = {
    {"HELO", &Session::cmd_helo, Session::kLimit | Session::kPreTls | Session::kLast},
    {"EHLO", &Session::cmd_ehlo, Session::kLimit | Session::kPreTls | Session::kLast},
    {"STARTTLS", &Session::cmd_starttls, Session::kPreTls | Session::kLast},
    {"AUTH", &Session::cmd_auth, 0},
    {"MAIL", &Session::cmd_mail, 0},
    {"RCPT", &Session::cmd_rcpt, 0},
    {"DATA", &Session::cmd_data, Session::kLast},
    {"BDAT", &Session::cmd_bdat, 0},  // its chunk follows at once: not "last" in a group
    {"RSET", &Session::cmd_rset, Session::kLimit},
    {"NOOP", &Session::cmd_noop, Session::kLimit | Session::kPreTls | Session::kLast},
    {"VRFY", &Session::cmd_vrfy, Session::kLimit | Session::kLast},
    {"ETRN", &Session::cmd_etrn, Session::kLimit},
    {"QUIT", &Session::cmd_quit, Session::kPreTls},
};
const int Session::kCommandCount = sizeof kCommands / sizeof kCommands[0];

Session::Session(daemon::Connection& conn, const Services& services)
    : conn_(conn),
      svc_(services),
      cfg_(*services.settings),
      reader_(static_cast<size_t>(cfg_.line_length_limit), cfg_.bare_lf),
      bare_lf_(cfg_.bare_lf) {
    if (svc_.checks != nullptr) check_ = svc_.checks->new_session();
}

Session::~Session() {
    *alive_ = false;
    if (timer_ != nullptr) event_free(timer_);
    if (sleep_timer_ != nullptr) event_free(sleep_timer_);
}

void Session::start() {
    set_client_facts();
    facts_.service_name = cfg_.service_name;
    timer_ = event_new(svc_.base, -1, 0, [](evutil_socket_t, short, void* arg) {
        static_cast<Session*>(arg)->on_timeout();
    }, this);
    // A backstop for writes to a client that does not read; reads use our own timer.
    conn_.set_timeout(cfg_.timeout + 10);
    if (svc_.resolver == nullptr || !cfg_.peername_lookup) {
        arm_timer();
        connected();
        return;
    }
    wait_begin();
    std::weak_ptr<bool> alive = alive_;
    dns::lookup_client_names(*svc_.resolver, facts_.client.address, [this, alive](const dns::ClientNames& n) {
        if (alive.expired()) return;
        auto status = [](dns::NameStatus s) { return static_cast<NameStatus>(static_cast<int>(s)); };
        facts_.client.name = n.name;
        facts_.client.reverse_name = n.reverse_name;
        facts_.client.name_status = status(n.name_status);
        facts_.client.reverse_name_status = status(n.reverse_name_status);
        wait_end();
        connected();
        if (!alive.expired()) pump();
    });
}

// The client's names are known: connection limits, client restrictions, the greeting.
void Session::connected() {
    log::info("connect from %s", facts_.client.namaddr().c_str());
    if (cfg_.bare_lf != BareLf::Allow && svc_.bare_lf_exempt && svc_.bare_lf_exempt(facts_.client)) {
        bare_lf_ = BareLf::Allow;
        reader_.set_bare_lf(BareLf::Allow);
    }
    if (svc_.anvil != nullptr) {
        limits_ = svc_.anvil->new_session(facts_);
        if (auto refused = limits_->check_connect()) {
            reply(refused->text);
            flush();
            close("");
            return;
        }
    }
    if (cfg_.tls_wrappermode) {
        start_wrapper_tls();
        return;
    }
    greet();
}

// Postfix with smtpd_delay_reject = no: a client rejected at connect gets the rejection
// instead of the greeting, and "503 access denied" for every command but QUIT.
void Session::greet() {
    check(CheckPoint::Connect, [this](CheckOutcome outcome) {
        if (outcome.rejected()) {
            access_denied_ = true;
            reply(outcome.reply);
        } else {
            reply("220 " + cfg_.banner);
        }
        flush();
    });
}

void Session::on_input() {
    std::string& in = conn_.input();
    if (!in.empty()) {
        reader_.feed(in);
        conn_.consume(in.size());
        arm_timer();
    }
    pump();
}

// Handles reader events until input runs out or something asynchronous is pending.
void Session::pump() {
    std::weak_ptr<bool> alive = alive_;
    while (!waiting_ && !closing_) {
        ReaderEvent ev = reader_.next();
        switch (ev.kind) {
            case ReaderEvent::Kind::None:
                flush();
                return;
            case ReaderEvent::Kind::LineTooLong:
                line_too_long(ev.text);
                break;
            case ReaderEvent::Kind::Command:
                if (in_auth_)
                    auth_response(ev.text);
                else
                    dispatch(ev.text, ev.bare_lf);
                break;
            case ReaderEvent::Kind::Content:
                message_content(ev.text, ev.bare_lf);
                break;
            case ReaderEvent::Kind::EndOfData:
            case ReaderEvent::Kind::ChunkEnd:
                end_of_message();
                break;
        }
        if (alive.expired()) return;
    }
    if (!waiting_) flush();
}

// Postfix carries out the truncated command, after a warning.
void Session::line_too_long(const std::string& head) {
    std::string shown = head.substr(0, 30);
    for (char& c : shown)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    log::warn("%s: request longer than %ld: %s...", facts_.client.namaddr().c_str(), cfg_.line_length_limit,
              shown.c_str());
    if (in_auth_) {
        in_auth_ = false;
        sasl_.reset();
        return reply("500 5.5.6 SASL response limit exceeded");
    }
    dispatch(head, false);
}

void Session::dispatch(const std::string& line, bool bare_lf) {
    std::string_view text = trim(line);
    std::string_view name = text.substr(0, text.find(' '));
    std::string_view args = trim(text.substr(name.size()));
    int index = kUnknown;
    for (int i = 0; i < kCommandCount; ++i)
        if (iequals(name, kCommands[i].name)) index = i;
    if (bare_lf && bare_lf_ == BareLf::Reject) {
        // Postfix rejects the line uncounted, under the previous command's name, and hangs up.
        log_reject("bare <LF> received");
        reply(std::to_string(cfg_.bare_lf_code) + " 5.5.2 " + cfg_.myhostname + " Error: bare <LF> received");
        flush();
        close("");
        return;
    }
    // Refused before it is a command: not counted, as in Postfix.
    if (cfg_.smtputf8_enable && !valid_utf8(text)) return reply("500 5.5.2 Error: bad UTF-8 syntax");
    // The final reply to this command decides whether it counts as ok (reply()).
    counts_[index].second++;
    pending_index_ = index;
    if (index == kUnknown) {
        where_ = "UNKNOWN";
        reply(text.empty() ? "500 5.5.2 Error: bad syntax" : "500 5.5.2 Error: command not recognized");
        return;
    }
    const Command& cmd = kCommands[index];
    where_ = cmd.name;
    if (access_denied_ && cmd.handler != &Session::cmd_quit)
        return reply("503 5.7.0 Error: access denied for " + facts_.client.namaddr());
    if ((cmd.flags & kLast) && reader_.buffered() > 0 && !facts_.improper_pipelining) {
        // The client did not wait for our reply where RFC 2920 says it must.
        facts_.improper_pipelining = true;
        std::string seen = escape_text(reader_.peek().substr(0, 100));
        log::info("improper command pipelining after %s from %s: %s", cmd.name, facts_.client.namaddr().c_str(),
                  seen.c_str());
    }
    if ((cmd.flags & kLimit) && junk_count_++ > cfg_.junk_command_limit) ++error_count_;
    if (!(cmd.flags & kPreTls) && tls_required_first()) {
        reply("530 5.7.0 Must issue a STARTTLS command first");
        return;
    }
    (this->*cmd.handler)(args);
}

std::string Session::counters() const {
    std::string out;
    int total_ok = 0, total = 0;
    for (int i = 0; i <= kCommandCount; ++i) {
        auto [ok, n] = counts_[i];
        if (n == 0) continue;
        std::string name = i == kUnknown ? "unknown" : lowercase(kCommands[i].name);
        out += " " + name + "=" + std::to_string(ok);
        if (ok != n) out += "/" + std::to_string(n);
        total_ok += ok;
        total += n;
    }
    out += " commands=" + std::to_string(total_ok);
    if (total_ok != total) out += "/" + std::to_string(total);
    return out;
}

// Every reply goes through here: error counting, the final reply of a command decides
// whether it counts as ok, and a 4xx/5xx over the hard limit ends the session.
// smtpd_reject_footer(_maps) for a 4xx/5xx reply, with the session's macros.
std::string Session::with_footer(std::string_view text) const {
    std::string reply(text);
    std::string footer = cfg_.reject_footer;
    for (const auto& t : cfg_.reject_footer_maps) {
        auto r = t->lookup(reply);
        if (r.found()) {
            footer = r.value;
            break;
        }
    }
    if (footer.empty()) return reply;
    char stamp[32];
    time_t now = time(nullptr);
    struct tm tm_now;
    localtime_r(&now, &tm_now);
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm_now);
    std::map<std::string, std::string> macros = {{"client_address", facts_.client.address},
                                                 {"client_port", facts_.client.port},
                                                 {"localtime", stamp},
                                                 {"server_name", cfg_.myhostname}};
    return add_reply_footer(reply, footer, macros);
}

void Session::reply(std::string_view original) {
    std::string footed;
    if (!original.empty() && (original[0] == '4' || original[0] == '5') &&
        (!cfg_.reject_footer.empty() || !cfg_.reject_footer_maps.empty()))
        footed = with_footer(original);
    std::string_view text = footed.empty() ? original : std::string_view(footed);
    // Multi-line replies (EHLO, restriction texts) come as lines joined by "\n".
    std::string_view last = text;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        out_.append(line).append("\r\n");
        last = line;
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    if (last.empty()) return;
    char cls = last[0];
    if (pending_index_ >= 0 && cls != '3') {
        if (cls == '2') counts_[pending_index_].first++;
        pending_index_ = -1;
    }
    if (cls == '4' || cls == '5') {
        ++error_count_;
        if (error_count_ >= cfg_.hard_error_limit && !closing_) {
            out_ += "421 4.7.0 " + cfg_.myhostname + " Error: too many errors\r\n";
            log::info("too many errors after %s from %s", where_text().c_str(), facts_.client.namaddr().c_str());
            sleep_timer_pending_ = false;
            flush();
            close("");
            return;
        }
        if (error_count_ >= cfg_.soft_error_limit && cfg_.error_sleep_time > 0) error_sleep_then_resume();
    }
}

void Session::flush() {
    if (out_.empty() || sleep_timer_pending_) return;
    conn_.write(out_);
    out_.clear();
}

// Postfix sleeps before each reply once the client made too many errors: the reply is
// held and input paused, without blocking the other sessions of the process.
void Session::error_sleep_then_resume() {
    if (sleep_timer_pending_) return;
    if (sleep_timer_ == nullptr)
        sleep_timer_ = event_new(svc_.base, -1, 0, [](evutil_socket_t, short, void* arg) {
            auto* self = static_cast<Session*>(arg);
            self->sleep_timer_pending_ = false;
            self->flush();
            self->wait_end();
            self->pump();
        }, this);
    sleep_timer_pending_ = true;
    wait_begin();
    timeval tv{cfg_.error_sleep_time, 0};
    event_add(sleep_timer_, &tv);
}

void Session::wait_begin() {
    waiting_ = true;
    conn_.pause_input();
    if (timer_ != nullptr) event_del(timer_);
}

void Session::wait_end() {
    if (sleep_timer_pending_) return;
    waiting_ = false;
    conn_.resume_input();
    arm_timer();
}

void Session::arm_timer() {
    if (timer_ == nullptr || waiting_) return;
    timeval tv{cfg_.timeout, 0};
    event_add(timer_, &tv);
}

void Session::on_timeout() {
    log::info("timeout after %s from %s", where_text().c_str(), facts_.client.namaddr().c_str());
    out_ += "421 4.4.2 " + cfg_.myhostname + " Error: timeout exceeded\r\n";
    sleep_timer_pending_ = false;
    flush();
    close("");
}

// Postfix's "reject:" line for refusals the session itself makes (not the check engine):
// "QID: reject: END-OF-MESSAGE from host[addr]: text; from=<s> to=<r> proto=ESMTP helo=<h>".
void Session::log_reject(std::string_view text) const {
    const auto& t = facts_.transaction;
    std::string line = (t.queue_id.empty() ? "NOQUEUE" : t.queue_id) + ": reject: " + where_ + " from " +
                       facts_.client.namaddr() + ": " + std::string(text) + ";";
    if (t.mail_given) line += " from=<" + t.sender + ">";
    if (!t.recipients.empty()) line += " to=<" + t.recipients.back().address + ">";
    line += " proto=" + facts_.protocol;
    if (!facts_.helo_name.empty()) line += " helo=<" + facts_.helo_name + ">";
    log::info("%s", line.c_str());
}

std::string Session::where_text() const {
    if (where_ == "DATA content" || where_ == "BDAT content")
        return strprintf("%s (%ld bytes)", where_.substr(0, 4).c_str(), message_bytes_);
    return where_;
}

void Session::close(std::string_view) {
    closing_ = true;
    cleanup_.reset();
    if (timer_ != nullptr) event_del(timer_);
    conn_.close_after_write();
}

void Session::on_disconnect() {
    if (!closing_) log::info("lost connection after %s from %s", where_text().c_str(), facts_.client.namaddr().c_str());
    closing_ = true;
    cleanup_.reset();  // an unfinished queue file is removed by cleanup
    log::info("disconnect from %s%s", facts_.client.namaddr().c_str(), counters().c_str());
}

}  // namespace postern::smtpd
