// The restriction engine (Postfix's smtpd_check.c): evaluates smtpd_*_restrictions,
// smtpd_restriction_classes, recipient validation (local_recipient_maps,
// virtual_*_maps, relay_recipient_maps) and the access(5) actions for one SMTP session.
//
// The session calls check() for each command that has restrictions; the engine answers
// through `done`, at once (no DNS needed) or later from the event loop once its DNS
// lookups (reject_unknown_*, reject_rbl_client, ...) have answered, so a slow DNS server
// never stalls the other sessions of the process. The engine implements
// smtpd_delay_reject (client/helo/sender verdicts given at RCPT), smtpd_helo_required,
// strict_rfc821_envelopes is the session's, not the engine's.
//
// Lifetime: a CheckSession belongs to one SMTP session; destroying it cancels lookups in
// flight (done is then never called). `facts` must outlive a pending check.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "smtpd/smtpd_facts.h"
#include "util/config/config.h"

struct event_base;

namespace postern::smtpd {

// The command being checked: which restriction lists apply.
enum class CheckPoint {
    Connect,   // smtpd_client_restrictions (unless delayed)
    Helo,      // smtpd_helo_restrictions (unless delayed)
    Mail,      // smtpd_sender_restrictions (unless delayed)
    Rcpt,      // delayed client/helo/sender, smtpd_relay_restrictions,
               // smtpd_recipient_restrictions, then recipient validation
    Data,      // smtpd_data_restrictions
    EndOfData, // smtpd_end_of_data_restrictions (facts.transaction.size = bytes received)
    Etrn,      // smtpd_etrn_restrictions
    Vrfy,      // VRFY: the same checks as Rcpt (Postfix's vrfy_cmd runs smtpd_check_rcpt);
               // facts.transaction.recipient = the address asked about
};

// What the accepted transaction must carry into the queue file because an access(5)
// action asked for it. Reset with reset_transaction().
struct MessageActions {
    std::vector<std::string> prepend_headers;  // PREPEND: whole header lines, no LF
    std::optional<std::string> hold;           // HOLD reason (log text)
    std::optional<std::string> discard;        // DISCARD reason
    std::optional<std::string> filter;         // FILTER transport:destination
    std::optional<std::string> redirect;       // REDIRECT address
    std::optional<std::string> bcc;            // BCC address (the last one wins, as Postfix 3.0+)
};

struct CheckOutcome {
    // Empty: accepted. Otherwise the whole reply to send: "554 5.7.1 <a@b>: Relay access
    // denied" (may be multi-line with "-" continuation, no CRLF at the end).
    std::string reply;
    bool rejected() const { return !reply.empty(); }
};

class CheckSession {
public:
    virtual ~CheckSession() = default;
    // Evaluates `point` for the facts as they are now. Logs Postfix's lines itself
    // ("NOQUEUE: reject: RCPT from host[addr]: 554 5.7.1 ...; from=<> to=<> proto=ESMTP
    // helo=<h>", "warn: ...", "reject_warning: ...", "ID: hold: ..."). Calls done exactly
    // once unless destroyed first.
    virtual void check(CheckPoint point, const SessionFacts& facts,
                       std::function<void(CheckOutcome)> done) = 0;
    // Actions that apply to the transaction accepted so far.
    virtual const MessageActions& actions() const = 0;
    // RSET, end of a transaction: forgets sender-level verdicts and actions.
    virtual void reset_transaction() = 0;
};

// One per smtpd process (tables opened once, before the jail if they need root).
class CheckEngine {
public:
    virtual ~CheckEngine() = default;
    // Fatal configuration errors (unknown restriction, bad table) are logged as
    // "fatal: ..." and exit, as Postfix does.
    static std::unique_ptr<CheckEngine> create(const config::Config& config, event_base* base);
    virtual std::unique_ptr<CheckSession> new_session() = 0;
};

}  // namespace postern::smtpd
