// The mail flow's vocabulary: every request and reply between Postern's mail daemons, as
// typed records over the attribute encoding (util/ipc/attr.h). With the queue-file
// module (util/queue/) this header is the whole conversation:
//
//   sendmail -> postdrop        queue-file records on a pipe (util/queue/record.h)
//   postdrop -> maildrop/ID     a queue file; then a trigger to public/pickup
//   pickup, local, bounce, smtpd -> public/cleanup     Cleanup* records (a stream)
//   cleanup -> incoming/ID      a queue file, fsynced; then a trigger to public/qmgr
//   cleanup, qmgr -> private/rewrite                  Rewrite*/Resolve* records
//   qmgr -> private/<transport> (local, smtp, ...)    DeliveryRequest -> DeliveryReply
//   qmgr -> private/bounce                             BounceRequest -> BounceReply
//   qmgr -> bounce/ID, defer/ID, trace/ID              DeliveryLogEntry records (files)
//   postqueue, postsuper, sendmail -q -> public/qmgr  trigger bytes (kTrigger*)
//
// Version: kProtocolVersion goes up when a record changes incompatibly. Each from_record()
// rejects a missing, repeated or unknown field (ipc::RecordReader), so a daemon of another
// version fails loudly instead of misreading.
#pragma once

#include <sys/time.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/base/result.h"
#include "util/ipc/attr.h"

namespace postern::ipc::mail {

inline constexpr long kProtocolVersion = 1;

// ---- Endpoints (relative to queue_directory; master.cf service names) -------------

inline constexpr std::string_view kCleanupSocket = "public/cleanup";
inline constexpr std::string_view kPickupSocket = "public/pickup";
inline constexpr std::string_view kQmgrSocket = "public/qmgr";
inline constexpr std::string_view kRewriteSocket = "private/rewrite";
inline constexpr std::string_view kBounceSocket = "private/bounce";
// A delivery agent listens on "private/" + transport name (master.cf service).
std::string agent_socket(std::string_view transport);

// ---- Triggers (Postfix's qmgr trigger bytes; one connection, bytes, close) ---------

inline constexpr char kTriggerWakeup = 'W';         // look at incoming/ (pickup: maildrop/)
inline constexpr char kTriggerScanIncoming = 'I';
inline constexpr char kTriggerScanDeferred = 'D';
inline constexpr char kTriggerScanAll = 'A';        // postqueue -f: deferred as well
inline constexpr char kTriggerFlushDead = 'F';      // forget "destination is dead" state

// Sends `bytes` to a trigger service (connect to QDIR/socket, write, close). Errors name
// the socket; callers treat a failed trigger as a warning (the wakeup timer catches up).
Status send_trigger(const std::string& queue_directory, std::string_view socket,
                    std::string_view bytes, long timeout_seconds = 10);

// ---- DSN vocabulary (Postfix's dsn_mask.h values, as they appear in queue files) ----

inline constexpr long kNotifyNever = 1 << 0;
inline constexpr long kNotifySuccess = 1 << 1;
inline constexpr long kNotifyFailure = 1 << 2;
inline constexpr long kNotifyDelay = 1 << 3;
inline constexpr long kRetFull = 1 << 0;
inline constexpr long kRetHeaders = 1 << 1;

// Parses "SUCCESS,DELAY" / "NEVER" (sendmail -N, smtpd NOTIFY=); 0 = invalid.
long parse_notify(std::string_view list);
std::string notify_text(long mask);  // "SUCCESS,FAILURE"

// ---- cleanup: one message as a stream of records on one connection ------------------
//
//   client: CleanupOpen            -> server: CleanupOpened (queue_id)
//   client: CleanupEnvelope        (no reply)
//   client: CleanupContent ...     (no reply; the message in chunks, LF line ends)
//   client: CleanupEnd             -> server: CleanupResult, sent only after the queue
//                                     file is fsynced (or the message was refused)
// The connection may carry the next message after a result.

enum CleanupFlags : long {
    kCleanupBounce = 1 << 0,     // problems become a bounce, not a refusal (pickup, local)
    kCleanupFilter = 1 << 1,     // apply header_checks/body_checks
    kCleanupHold = 1 << 2,       // put the message on hold
    kCleanupDiscard = 1 << 3,    // discard the message
    kCleanupBccOk = 1 << 4,      // always_bcc etc. allowed
    kCleanupMapOk = 1 << 5,      // apply canonical and virtual alias maps
    kCleanupExtract = 1 << 6,    // sendmail -t: recipients from To/Cc/Bcc (+ argv ones)
    kCleanupLocalSubmit = 1 << 7,  // local submission: add Received/From/Date/Message-ID
    kCleanupDefault = kCleanupFilter | kCleanupBccOk | kCleanupMapOk,
};

// CleanupResult.status bits (Postfix's cleanup_user.h CLEANUP_STAT_*).
enum CleanupStatus : long {
    kCleanupOk = 0,
    kCleanupStatBad = 1 << 0,    // internal protocol error
    kCleanupStatWrite = 1 << 1,  // error writing the queue file (disk full ...): 4xx
    kCleanupStatSize = 1 << 2,   // message_size_limit exceeded: 552 5.3.4
    kCleanupStatCont = 1 << 3,   // content rejected (header/body checks): 5xx reason given
    kCleanupStatHops = 1 << 4,   // too many Received: headers: 554 5.4.0
    kCleanupStatRcpt = 1 << 5,   // no recipients: 5.1.0
    kCleanupStatDefer = 1 << 7,  // temporary content rejection: 4xx reason given
};
// Postfix's default reply text for a status ("4.3.0 queue file write error" ...).
std::string cleanup_status_text(long status);

struct CleanupOpen {
    long flags = kCleanupDefault;
    AttrRecord to_record() const;  // request=open
    static Result<CleanupOpen> from_record(const AttrRecord& r);
};

struct CleanupOpened {
    long status = kCleanupOk;
    std::string queue_id;
    AttrRecord to_record() const;
    static Result<CleanupOpened> from_record(const AttrRecord& r);
};

struct CleanupRecipient {
    std::string address;    // internal (unquoted) form
    std::string orig;       // the address as first received ("" = same)
    std::string dsn_orcpt;  // "rfc822;user@example.com" or ""
    long notify = 0;        // kNotify* mask, 0 = not given
};

// SMTPUTF8 flags (Postfix's SMTPUTF8_FLAG_*): the client asked for SMTPUTF8 (or cleanup
// detected UTF-8 in a local submission), and where cleanup found non-ASCII text. Kept
// in the queue file's size record and passed in delivery requests; a message that was
// requested and has any other bit needs a server that offers SMTPUTF8.
enum Smtputf8Flags : long {
    kSmtputf8Requested = 1 << 0,
    kSmtputf8Header = 1 << 1,
    kSmtputf8Sender = 1 << 2,
    kSmtputf8Recipient = 1 << 3,
};
inline bool smtputf8_required(long flags) {
    return (flags & kSmtputf8Requested) && (flags & ~kSmtputf8Requested);
}

struct CleanupEnvelope {
    std::string sender;  // "" = null sender
    long smtputf8 = 0;   // kSmtputf8Requested when the client sent MAIL FROM ... SMTPUTF8
    std::optional<std::string> fullname;  // sendmail -F
    long arrival_sec = 0, arrival_usec = 0;  // 0 = now (cleanup's clock)
    std::string envid;                       // DSN ENVID
    long ret = 0;                            // kRet*, 0 = not given
    // Queue-file attributes (util/queue/queue_file.h attr:: names): log_client_name,
    // log_client_address, log_helo_name, log_protocol_name, rewrite_context, ...
    std::vector<std::pair<std::string, std::string>> attributes;
    std::vector<CleanupRecipient> recipients;
    AttrRecord to_record() const;  // request=envelope
    static Result<CleanupEnvelope> from_record(const AttrRecord& r);
};

struct CleanupContent {
    std::string data;  // raw bytes, any split; the last chunk need not end in LF
    AttrRecord to_record() const;  // request=content
    static Result<CleanupContent> from_record(const AttrRecord& r);
};

struct CleanupEnd {
    // kCleanupHold and kCleanupDiscard decided after the open (smtpd: an access(5) HOLD
    // at a later RCPT or in the end-of-data restrictions; Postfix's smtpd sends a
    // REC_TYPE_FLGS record for them). Other bits are a protocol error.
    long late_flags = 0;
    AttrRecord to_record() const;  // request=end
    static Result<CleanupEnd> from_record(const AttrRecord& r);
};

struct CleanupResult {
    long status = kCleanupOk;
    std::string reason;    // "5.7.1 message content rejected" ("" when ok)
    std::string queue_id;
    AttrRecord to_record() const;
    static Result<CleanupResult> from_record(const AttrRecord& r);
};

// Which request a record from a cleanup client is ("open", "envelope", ...); "" = none.
std::string_view request_of(const AttrRecord& r);

// ---- trivial-rewrite ------------------------------------------------------------------

// rewrite: canonical form of an address in a context ("local": append_at_myorigin,
// append_dot_mydomain, swap_bangpath, allow_percent_hack; "remote": remote_header_
// rewrite_domain rules). Addresses are in internal (unquoted) form both ways.
struct RewriteRequest {
    std::string rule = "local";
    std::string address;
    AttrRecord to_record() const;  // request=rewrite
    static Result<RewriteRequest> from_record(const AttrRecord& r);
};

struct RewriteReply {
    long flags = 0;  // kResolveFlagError when the server had trouble
    std::string address;
    AttrRecord to_record() const;
    static Result<RewriteReply> from_record(const AttrRecord& r);
};

// resolve: where a recipient goes. The bit values are Postfix's resolve_clnt.h ones, but
// the two failure bits are named by what the caller does: kResolveFlagError (Postfix's
// bit 2, RESOLVE_FLAG_ERROR) here means "try again later" and kResolveFlagFail (bit 3)
// "bad address, bounce" -- the opposite of Postfix's names. The differential test of
// trivial-rewrite swaps them before comparing; nothing outside Postern reads them.
inline constexpr long kResolveFlagFinal = 1 << 0;   // the address is final (no relaying)
inline constexpr long kResolveFlagRouted = 1 << 1;  // user@domain had a route (%, !, @x:)
inline constexpr long kResolveFlagError = 1 << 2;   // the lookup had a temporary error
inline constexpr long kResolveFlagFail = 1 << 3;    // the lookup failed permanently
inline constexpr long kResolveClassLocal = 1 << 8;
inline constexpr long kResolveClassAlias = 1 << 9;
inline constexpr long kResolveClassVirtual = 1 << 10;
inline constexpr long kResolveClassRelay = 1 << 11;
inline constexpr long kResolveClassDefault = 1 << 12;
inline constexpr long kResolveClassMask = 0x1f00;

struct ResolveRequest {
    std::string request = "resolve";  // or "verify" (address verification context)
    std::string sender;               // for sender_dependent_* lookups
    std::string address;
    AttrRecord to_record() const;
    static Result<ResolveRequest> from_record(const AttrRecord& r);
};

struct ResolveReply {
    long flags = 0;
    std::string transport;  // "local", "smtp", "error", ...
    std::string nexthop;    // "example.com", "[10.0.0.1]:25", error text for "error"
    std::string recipient;  // the address after rewriting
    AttrRecord to_record() const;
    static Result<ResolveReply> from_record(const AttrRecord& r);
};

// ---- delivery: qmgr -> agent (one request per connection turn) ----------------------

struct DeliveryRecipient {
    std::string address;
    std::string orig;
    std::string dsn_orcpt;
    long notify = 0;
    long offset = 0;  // of the recipient record in the queue file
};

inline constexpr long kDeliveryFlagVerify = 1 << 0;   // address verification: probe only
inline constexpr long kDeliveryFlagRecord = 1 << 1;   // sendmail -v: record a trace
// qmgr has more mail for this destination: an smtp/lmtp agent should keep its connection
// open for the next request (Postfix's DEL_REQ_FLAG_CONN_STORE, for
// smtp_connection_cache_on_demand).
inline constexpr long kDeliveryFlagConnStore = 1 << 2;

// The queue file's trace_flags attribute (written by sendmail -bv / -v), with Postfix's
// values (DEL_REQ_FLAG_USR_VRFY, DEL_REQ_FLAG_RECORD) so queue files stay compatible.
inline constexpr long kTraceFlagVerify = 1 << 9;   // -bv: report instead of delivering
inline constexpr long kTraceFlagRecord = 1 << 10;  // -v: report of the delivery attempt

struct DeliveryRequest {
    std::string queue_name;  // "active"
    std::string queue_id;
    long data_offset = 0;    // of the first content record (queue SizeInfo.data_offset)
    long data_size = 0;      // content_size
    std::string nexthop;
    std::string encoding;    // "7bit", "8bitmime", ""
    long smtputf8 = 0;
    std::string sender;
    std::string envid;
    long ret = 0;
    long flags = 0;
    long arrival_sec = 0, arrival_usec = 0;
    // When qmgr moved the message into active/ (the "b" of delays=a/b/c/d ends at the
    // handoff); 0 = not sent: the agent's handoff time stands for it.
    long active_sec = 0, active_usec = 0;
    std::string client_name, client_address, client_protocol, client_helo;
    std::vector<DeliveryRecipient> recipients;
    timeval active_arrival(timeval handoff) const {
        return active_sec > 0 ? timeval{active_sec, static_cast<suseconds_t>(active_usec)} : handoff;
    }
    AttrRecord to_record() const;  // request=deliver
    static Result<DeliveryRequest> from_record(const AttrRecord& r);
};

// What happened to one recipient. The class of `status` decides: 2.x.x delivered (the
// recipient is done), 4.x.x deferred (try again later), 5.x.x bounced.
struct RecipientResult {
    long index = 0;        // into DeliveryRequest.recipients
    std::string status;    // RFC 3463 "2.0.0"
    std::string action;    // RFC 3464: delivered, relayed, expanded, failed, delayed
    std::string reason;    // "delivered to maildir", "mailbox full", remote reply text
    std::string relay;     // "local", "mx.example.com[10.0.0.1]:25"
    // Delivered to an SMTP server that announced DSN: NOTIFY=SUCCESS went along with the
    // mail and the next hop reports success, so no notice is sent from here (Postfix's
    // smtp_rcpt_done() drops DSN_NOTIFY_SUCCESS for such a server).
    bool notify_passed_on = false;
    char status_class() const { return status.empty() ? '4' : status[0]; }
};

struct DeliveryReply {
    // 0: `results` says what happened to every recipient; otherwise the agent could not
    // deliver at all and everything in the request stays deferred.
    long status = 0;
    std::vector<RecipientResult> results;
    AttrRecord to_record() const;
    static Result<DeliveryReply> from_record(const AttrRecord& r);
};

// ---- bounce: notifications from the logs under bounce/, defer/, trace/ ---------------

enum class BounceCommand {
    Flush,       // bounce/ID -> non-delivery notification; log removed
    DeferFlush,  // defer/ID -> non-delivery notification (message expired); log removed
    Warn,        // defer/ID -> delay warning; log kept
    Trace,       // trace/ID -> delivery status notification (NOTIFY=SUCCESS); log removed
};
std::string_view bounce_command_name(BounceCommand c);

struct BounceRequest {
    BounceCommand command = BounceCommand::Flush;
    std::string queue_name;  // where the original message is ("active", "deferred")
    std::string queue_id;
    std::string encoding;
    long smtputf8 = 0;
    std::string sender;  // the notification goes here ("" = to 2bounce_notice_recipient)
    std::string envid;
    long ret = 0;
    long trace_flags = 0;  // kTraceFlag*: a trace flush for sendmail -bv/-v is a status report
    AttrRecord to_record() const;
    static Result<BounceRequest> from_record(const AttrRecord& r);
};

struct BounceReply {
    long status = 0;  // 0: the notice is queued (or there was nothing to send)
    std::string queue_id;  // of the notification, "" when none was sent
    AttrRecord to_record() const;
    static Result<BounceReply> from_record(const AttrRecord& r);
};

// ---- delivery logs: bounce/ID, defer/ID, trace/ID (one record per recipient) --------

struct DeliveryLogEntry {
    std::string recipient;
    std::string orig_rcpt;
    std::string dsn_orcpt;
    long notify = 0;
    long offset = 0;
    std::string status;  // "4.2.2"
    std::string action;  // delayed, failed, delivered, relayed, expanded
    std::string reason;  // shown by mailq in parentheses
    std::string relay;
    long when = 0;       // time(2) of the attempt
    AttrRecord to_record() const;
    static Result<DeliveryLogEntry> from_record(const AttrRecord& r);
};

}  // namespace postern::ipc::mail
