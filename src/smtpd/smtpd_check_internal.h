// Inside the restriction engine (smtpd_check*.cc only): compiled restriction lists, one
// evaluation of a check point, and the handler signature every restriction name has.
//
// Evaluation is continuation-passing so that DNS-based restrictions can answer later
// from the event loop: a handler calls `next(verdict)` exactly once, at once or from a
// DNS callback. Callbacks that outlive the session hold only a weak_ptr to the
// Evaluation and drop the answer when the session is gone.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "smtpd/smtpd_check.h"
#include "util/access/access_action.h"
#include "util/access/access_map.h"
#include "util/base/result.h"
#include "util/ipc/mail_proto.h"
#include "util/rewrite/match_list.h"
#include "util/table/table.h"

namespace postern::dns {
class Resolver;
}
namespace postern::smtpd {
class PolicyClient;
}

namespace postern::smtpd::check {

// Postfix's SMTPD_CHECK_DUNNO / SMTPD_CHECK_OK / SMTPD_CHECK_REJECT.
enum class Verdict { Dunno, Ok, Reject };
using Next = std::function<void(Verdict)>;

class Evaluation;
struct Restriction;
using RestrictionList = std::vector<Restriction>;
using Handler = void (*)(Evaluation& ev, const Restriction& r, Next next);

struct Restriction {
    std::string name;
    Handler handler = nullptr;
    std::string arg;                                   // table spec, DNS domain, ...
    std::vector<std::shared_ptr<table::Table>> tables; // check_*_access
    const RestrictionList* class_list = nullptr;       // a smtpd_restriction_classes name
};

// What a restriction name needs after it ("check_client_access type:table").
enum class ArgKind { None, Table, Domain, Server, Number };
struct NameInfo {
    Handler handler;
    ArgKind arg;
};
// The restriction table (smtpd_check_names.cc); nullptr for an unknown name.
const NameInfo* find_name(std::string_view name);

// Which data a restriction list is about: its reply name and class, as Postfix's
// generic_checks(state, list, reply_name, reply_class, def_acl).
enum class StageKind { Client, Helo, Sender, Recipient, Data, EndOfData, Etrn };
struct Stage {
    StageKind kind = StageKind::Client;
    std::string reply_name;
    std::string reply_class;
};

// A deferred reply (defer_if_permit / defer_if_reject), Postfix's SMTPD_DEFER.
struct Deferred {
    bool active = false;
    std::string reply;  // "450 4.7.1 <x>: ... rejected: ..."
};

// Resolves an address as trivial-rewrite would (smtpd_resolve_addr): the IPC client in
// the daemon, the in-process resolver in tests.
using ResolveFn = std::function<Result<ipc::mail::ResolveReply>(std::string_view sender,
                                                                std::string_view address)>;

// A list of client networks (mynetworks, the *_clientcerts lists are tables): Postfix's
// addr_match_list with "!net", "/file" and "type:table" entries.
class NetList {
public:
    static Result<NetList> create(std::string_view param, const std::vector<std::string>& items);
    // Yes/No, or Error when a table failed (the caller answers 451 4.3.5).
    enum class Match { No, Yes, Error };
    Match match(std::string_view address) const;

private:
    struct Entry {
        bool negate = false;
        int family = 0;                  // AF_INET / AF_INET6; 0 = table
        unsigned char net[16] = {};
        unsigned prefix = 0;
        std::shared_ptr<table::Table> table;
    };
    static Status add(NetList& list, std::string_view param, std::string item, int depth);
    std::vector<Entry> entries_;
};

// Everything an engine reads from main.cf, resolved once.
struct Settings {
    bool delay_reject = true;
    bool relay_before_recipient = true;
    bool soft_bounce = false;
    bool reject_unlisted_sender = false;
    bool reject_unlisted_recipient = true;
    bool allow_untrusted_routing = false;
    int reject_code = 554, defer_code = 450, relay_code = 554, access_reject_code = 554,
        access_defer_code = 450, rbl_code = 554, unknown_address_code = 450,
        unknown_client_code = 450, unknown_hostname_code = 450, invalid_hostname_code = 501,
        non_fqdn_code = 504, multi_recipient_code = 550, local_recipient_code = 550,
        virtual_alias_code = 550, virtual_mailbox_code = 550, relay_recipient_code = 550,
        unknown_name_tempfail_action_code = 450;
    // unknown_address_tempfail_action / unknown_helo_hostname_tempfail_action = defer:
    // a temporary DNS failure rejects at once instead of defer_if_permit.
    bool unknown_address_defer_now = false, unknown_helo_defer_now = false;
    std::string default_rbl_reply;
    std::string myhostname;
    access::LookupParams lookup;
    access::ActionParams actions;
};

struct CompiledLists {
    RestrictionList client, helo, sender, relay, recipient, data, end_of_data, etrn;
    std::map<std::string, RestrictionList, std::less<>> classes;
};

// Recipient validation tables (smtpd_check_rcptmap): empty list = no validation.
struct RecipientMaps {
    std::vector<std::shared_ptr<table::Table>> local, virtual_alias, virtual_mailbox, relay,
        sender_login, rbl_reply;
    bool local_configured = false, relay_configured = false;
    std::vector<std::shared_ptr<table::Table>> relay_clientcerts;  // fingerprint tables
};

class EngineImpl;
class SessionImpl;

class Evaluation : public std::enable_shared_from_this<Evaluation> {
public:
    Evaluation(EngineImpl& engine, SessionImpl& session, const SessionFacts& facts, CheckPoint point)
        : engine(engine), session(session), facts(facts), point(point) {}

    EngineImpl& engine;
    SessionImpl& session;
    const SessionFacts& facts;
    CheckPoint point;
    Stage stage;
    int warn_if_reject = 0;  // list depth at which warn_if_reject was given; 0 = off
    Deferred defer_if_reject, defer_if_permit;
    int recursion = 1;  // depth of the list being evaluated (nested lists: deeper)
    std::string reply;  // the reject being returned

    // Postfix's smtpd_check_reject(): applies warn_if_reject, defer_if_reject and
    // soft_bounce, logs "reject: ..." and keeps the reply. `text` is without code and DSN.
    Verdict reject(int code, std::string dsn, const std::string& text, access::ReplyClass cls);
    // Postfix's DEFER_IF_PERMIT2 with a *_tempfail_action: "defer" (defer_now) or
    // warn_if_reject rejects now; defer_if_permit remembers the reply and goes on.
    Verdict tempfail(bool defer_now, int code, const std::string& dsn, const std::string& text,
                     access::ReplyClass cls);
    // A whole reply "NNN D.D.D text" (access maps, rbl replies).
    Verdict reject_reply(const std::string& whole);
    // DEFER_IF_PERMIT2 / DEFER_IF_REJECT2: remember the first one.
    void defer_if(Deferred& d, int code, const std::string& dsn, const std::string& text,
                  access::ReplyClass cls);
    // smtpd_log_access_permit_actions: logs a permit restriction's OK.
    void log_permit(const Restriction& r);
    // 451 4.3.5 Server configuration error (bad table, unknown restriction).
    Verdict server_error(const std::string& why);
    // "NOQUEUE: <what>: RCPT from host[addr]: <text>; from=<> to=<> proto=ESMTP helo=<h>"
    void log_whatsup(const char* what, const std::string& text) const;
    // Runs `list` from element `i` until a verdict other than Dunno; `depth` is 1 for a
    // parameter's list, deeper for classes and access map values.
    void run(const RestrictionList& list, size_t i, int depth, Next done);
    // The class of the current stage, for DSN fix-ups.
    access::ReplyClass stage_class() const;
    // The address being checked at RCPT/VRFY, and the sender (internal forms).
    const std::string& recipient() const { return facts.transaction.recipient; }
    std::weak_ptr<Evaluation> weak() { return weak_from_this(); }
};

// Postfix's state->where for the check point: "RCPT", "END-OF-MESSAGE", ...
const char* where_name(CheckPoint point, const SessionFacts& facts);

// Acts on an access(5) action found outside a table (a policy server's reply) as
// check_table_result() does, for the current stage's reply name and class.
void apply_table_result(Evaluation& ev, const std::string& table, const std::string& key, const std::string& value,
                        Next next);

// An access table lookup's outcome as check_*_access acts on it: a lookup error is
// "451 4.3.5 <name>: Class rejected: Server configuration error", a match applies its
// action. class_name overrides the class's name in replies ("" = the class's own).
void apply_access_outcome(Evaluation& ev, const access::Outcome& outcome, const std::string& reply_name,
                          access::ReplyClass cls, const std::string& class_name, Next next);

// Handlers implemented in smtpd_check_access.cc, _rcpt.cc, _dns.cc, _policy.cc and
// _servers.cc.
void check_policy_service(Evaluation&, const Restriction&, Next);
void check_relay_domains(Evaluation&, const Restriction&, Next);
void sleep_restriction(Evaluation&, const Restriction&, Next);
void permit_inet_interfaces(Evaluation&, const Restriction&, Next);
void permit_mx_backup(Evaluation&, const Restriction&, Next);
void check_client_a_access(Evaluation&, const Restriction&, Next);
void check_client_mx_access(Evaluation&, const Restriction&, Next);
void check_client_ns_access(Evaluation&, const Restriction&, Next);
void check_reverse_client_a_access(Evaluation&, const Restriction&, Next);
void check_reverse_client_mx_access(Evaluation&, const Restriction&, Next);
void check_reverse_client_ns_access(Evaluation&, const Restriction&, Next);
void check_helo_a_access(Evaluation&, const Restriction&, Next);
void check_helo_mx_access(Evaluation&, const Restriction&, Next);
void check_helo_ns_access(Evaluation&, const Restriction&, Next);
void check_sender_a_access(Evaluation&, const Restriction&, Next);
void check_sender_mx_access(Evaluation&, const Restriction&, Next);
void check_sender_ns_access(Evaluation&, const Restriction&, Next);
void check_recipient_a_access(Evaluation&, const Restriction&, Next);
void check_recipient_mx_access(Evaluation&, const Restriction&, Next);
void check_recipient_ns_access(Evaluation&, const Restriction&, Next);
void check_client_access(Evaluation&, const Restriction&, Next);
void check_reverse_client_access(Evaluation&, const Restriction&, Next);
void check_helo_access(Evaluation&, const Restriction&, Next);
void check_sender_access(Evaluation&, const Restriction&, Next);
void check_recipient_access(Evaluation&, const Restriction&, Next);
void check_sasl_access(Evaluation&, const Restriction&, Next);
void check_ccert_access(Evaluation&, const Restriction&, Next);
void reject_unauth_destination(Evaluation&, const Restriction&, Next);
void defer_unauth_destination(Evaluation&, const Restriction&, Next);
void permit_auth_destination(Evaluation&, const Restriction&, Next);
void reject_unlisted_sender(Evaluation&, const Restriction&, Next);
void reject_unlisted_recipient(Evaluation&, const Restriction&, Next);
void reject_non_fqdn_sender(Evaluation&, const Restriction&, Next);
void reject_non_fqdn_recipient(Evaluation&, const Restriction&, Next);
void reject_unknown_sender_domain(Evaluation&, const Restriction&, Next);
void reject_unknown_recipient_domain(Evaluation&, const Restriction&, Next);
void reject_unknown_helo_hostname(Evaluation&, const Restriction&, Next);
void reject_rbl_client(Evaluation&, const Restriction&, Next);
void permit_dnswl_client(Evaluation&, const Restriction&, Next);
void reject_rhsbl_client(Evaluation&, const Restriction&, Next);
void reject_rhsbl_reverse_client(Evaluation&, const Restriction&, Next);
void reject_rhsbl_sender(Evaluation&, const Restriction&, Next);
void reject_rhsbl_recipient(Evaluation&, const Restriction&, Next);
void reject_rhsbl_helo(Evaluation&, const Restriction&, Next);
void reject_sender_login_mismatch(Evaluation&, const Restriction&, Next);
void reject_authenticated_sender_login_mismatch(Evaluation&, const Restriction&, Next);
void reject_known_sender_login_mismatch(Evaluation&, const Restriction&, Next);
void reject_unauthenticated_sender_login_mismatch(Evaluation&, const Restriction&, Next);

// A check_policy_service argument, resolved once: "inet:host:port" or
// "{ inet:host:port, timeout=10s, default_action=DUNNO, ... }".
struct PolicyService {
    std::unique_ptr<PolicyClient> client;
    std::string default_action;
    std::string policy_context;
    ~PolicyService();
};

// Recipient validation after the restriction lists (smtpd_check_rcptmap); also VRFY.
// Dunno when the address is known or not validated.
void validate_recipient(Evaluation& ev, const std::string& address, Next next);

// An address as replies show it: the local part quoted when it needs quotes.
inline std::string external_form(const std::string& address) { return access::quote_local_part(address); }

// The keys Postfix's mail_addr_find() tries for an address in a recipient-style table:
// the address, without its extension, (local domains) the bare local part, "@domain".
std::vector<std::string> mail_addr_keys(const std::string& address, bool local, const std::string& delimiters);

// Opens the tables of a map list ("proxy:" dropped); one that cannot be opened is
// logged and fails every lookup (mail is deferred, as with Postfix's surrogate tables).
std::vector<std::shared_ptr<table::Table>> open_tables(const std::vector<std::string>& specs);

// Splits a restriction list on commas and blanks, keeping "inline:{ a=b, c=d }" whole.
std::vector<std::string> split_restrictions(std::string_view value);

// Compiles `names` (a restriction list parameter's value). Unknown names are kept with
// a null handler: Postfix reports them when they are reached ("unknown smtpd
// restriction"), not at startup.
Result<RestrictionList> compile_list(std::string_view param, const std::vector<std::string>& names,
                                     const std::map<std::string, RestrictionList, std::less<>>* classes);

class EngineImpl : public CheckEngine {
public:
    EngineImpl(const config::Config& config, event_base* base, ResolveFn resolve,
               dns::Resolver* dns);
    std::unique_ptr<CheckSession> new_session() override;
    Status init();  // compiles lists and opens tables; fatal-worthy errors

    const config::Config& config;
    event_base* base;
    ResolveFn resolve;
    dns::Resolver* dns;  // nullptr: DNS restrictions answer "temporary failure"
    Settings settings;
    CompiledLists lists;
    RecipientMaps maps;
    std::unique_ptr<NetList> mynetworks;
    std::unique_ptr<NetList> mx_backup_networks;  // permit_mx_backup_networks; empty: any
    std::vector<std::string> inet_addresses;      // inet_interfaces (permit_inet_interfaces)
    std::vector<std::string> own_addresses;       // inet_ and proxy_interfaces (permit_mx_backup)
    bool inet_ipv6 = true;                        // inet_protocols includes IPv6
    bool warned_check_relay_domains = false;      // Postfix warns once per process
    rewrite::MatchList log_permit_actions;        // smtpd_log_access_permit_actions
    // Restriction lists found in access map values, compiled once per distinct value.
    std::map<std::string, RestrictionList, std::less<>> rhs_lists;
    // check_policy_service endpoints by argument text (one connection each per process).
    std::map<std::string, std::unique_ptr<PolicyService>, std::less<>> policy_services;
    // The service for `arg`, created on first use; nullptr and `error` when `arg` is bad.
    PolicyService* policy_service(const std::string& arg, std::string& error);
};

class SessionImpl : public CheckSession {
public:
    explicit SessionImpl(EngineImpl& engine) : engine(engine) {}
    void check(CheckPoint point, const SessionFacts& facts,
               std::function<void(CheckOutcome)> done) override;
    const MessageActions& actions() const override { return actions_; }
    void reset_transaction() override;
    MessageActions& mutable_actions() { return actions_; }
    // The policy protocol's "instance": one value per mail transaction (set at MAIL).
    const std::string& instance() const { return instance_; }

    EngineImpl& engine;

private:
    MessageActions actions_;
    std::string instance_;
    unsigned instance_seqno_ = 0;
    std::shared_ptr<Evaluation> current_;
    // defer_if_permit left by the client, helo and sender lists when they ran at their
    // own command (smtpd_delay_reject = no): it applies at RCPT.
    Deferred saved_client_, saved_helo_, saved_sender_;
};

// For tests: an engine with an explicit resolver function and DNS resolver.
std::unique_ptr<EngineImpl> create_engine(const config::Config& config, event_base* base,
                                          ResolveFn resolve, dns::Resolver* dns);

}  // namespace postern::smtpd::check
