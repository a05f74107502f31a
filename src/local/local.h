// local(8): the delivery agent for local recipients, as Postfix's local. One request
// from qmgr names a queue file and recipients; for each recipient the delivery switch
// tries, in Postfix's order, alias_maps (with :include:, |command, /file, owner-
// aliases), ~/.forward (forward_path), mailbox_transport(_maps), mailbox_command(_maps),
// home_mailbox (Maildir when it ends in '/'), mail_spool_directory, then
// fallback_transport(_maps), luser_relay, or bounces "unknown user". Mail aliased or
// forwarded elsewhere is resubmitted through cleanup. Every attempt is logged here
// ("to=<...>, relay=local, ... status=sent (delivered to mailbox)"); qmgr learns the
// outcome per recipient from the reply and marks the queue file itself.
//
// The state is passed by value down the recursion, as in Postfix's LOCAL_STATE, so a
// deeper level (an alias, a .forward) cannot change what the level above sees.
#pragma once

#include <sys/time.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "util/config/config.h"
#include "util/ipc/mail_proto.h"
#include "util/mailbox/mail_copy.h"
#include "util/mailbox/mbox.h"
#include "util/mailbox/queued_message.h"
#include "util/queue/queue_layout.h"
#include "util/table/table.h"

namespace postern::ipc::mail {
class RewriteClient;
}

namespace postern::local {

// Where a destination came from (allow_mail_to_commands / allow_mail_to_files values).
enum ExpandType : unsigned { kExpandAlias = 1, kExpandForward = 2, kExpandInclude = 4 };
// prepend_delivered_header values.
enum DeliveredHeader : unsigned { kHdrCommand = 1, kHdrFile = 2, kHdrForward = 4 };

struct Settings {
    std::string service = "local";
    std::string queue_directory;
    std::string myorigin, myhostname;
    std::vector<std::string> mydestination;
    std::string recipient_delimiter;
    std::vector<std::string> alias_maps;  // "type:name" as configured
    std::string forward_path;             // unexpanded (delivery macros)
    std::string mailbox_transport, fallback_transport;
    std::string mailbox_transport_maps, fallback_transport_maps, mailbox_command_maps;
    std::string mailbox_command, home_mailbox, mail_spool_directory, luser_relay;
    std::string command_execution_directory, local_command_shell;
    std::string forward_filter, command_filter, exec_dir_filter;
    std::vector<std::string> export_environment;
    unsigned allow_commands = kExpandAlias | kExpandForward;
    unsigned allow_files = kExpandAlias | kExpandForward;
    unsigned delivered_header = kHdrCommand | kHdrFile | kHdrForward;
    mailbox::LockPolicy lock;
    long mailbox_size_limit = 51200000;
    long command_time_limit = 1000;
    long duplicate_filter_limit = 1000;
    long ipc_timeout = 3600;
    int delay_max_digits = 2;
    bool owner_request_special = true, expand_owner_alias = false, reset_owner_alias = false;
    bool strict_mailbox_ownership = true, require_home_directory = false, biff = true;
    bool enable_original_recipient = true;
    std::string default_privs = "nobody";
    uid_t owner_uid = 0;  // mail_owner: the identity between deliveries (root instances)
    gid_t owner_gid = 0;
    const config::Config* config = nullptr;  // for $name in expansions of other parameters
};
// Reads main.cf once per process; configuration errors are fatal as in Postfix.
Settings load_settings(const config::Config& config);

// The rights a file or command delivery runs with.
struct UserAttr {
    bool set = false;  // false: no user context (root-owned alias db -> default_privs)
    uid_t uid = 0;
    gid_t gid = 0;
    std::string home, shell, logname;
};

struct MessageAttr {
    int level = 0;
    std::string recipient;  // the address being delivered (changes with aliasing)
    std::string orig_rcpt;  // the top-level address as first received
    std::string dsn_orcpt;
    long notify = 0;
    std::string sender;     // may become owner-alias
    std::string delivered;  // Delivered-To: value
    std::string owner;      // owner- alias in effect, "" = none
    unsigned exp_type = 0;  // 0: not from an expansion
    std::string exp_from;   // alias being expanded (self-reference detection)
    std::string local, user, extension, domain, delim;
};

using mailbox::QueuedMessage;
class Forwarder;

// One delivery request: what all recipients share.
struct RequestContext {
    const Settings& cfg;
    const ipc::mail::DeliveryRequest& request;
    QueuedMessage& message;
    Forwarder& forwarder;
    ipc::mail::RewriteClient* rewrite = nullptr;  // null: resolve by mydestination
    std::vector<std::unique_ptr<table::Table>>* aliases = nullptr;
    timeval handoff{};
    std::unordered_set<std::string> seen;  // duplicate filter (duplicate_filter_limit)
    // Outcome of the current top-level recipient: the worst of its deliveries.
    ipc::mail::RecipientResult verdict;
    bool verdict_set = false;

    // Postfix's been_here(): true when `key` was seen before in this request.
    bool been_here(const std::string& key);
};

// Every delivery attempt ends in one of these: logged, then folded into the verdict.
enum class DelStat { Sent, Deferred, Bounced };
DelStat record_result(RequestContext& ctx, const MessageAttr& attr, DelStat status,
                     std::string dsn, std::string_view reason, std::string_view action = {});
inline DelStat sent(RequestContext& c, const MessageAttr& a, std::string_view why) {
    return record_result(c, a, DelStat::Sent, "2.0.0", why);
}
inline DelStat defer(RequestContext& c, const MessageAttr& a, std::string dsn, std::string_view why) {
    return record_result(c, a, DelStat::Deferred, std::move(dsn), why);
}
inline DelStat bounce(RequestContext& c, const MessageAttr& a, std::string dsn, std::string_view why) {
    return record_result(c, a, DelStat::Bounced, std::move(dsn), why);
}
DelStat from_failure(RequestContext& c, const MessageAttr& a, const mailbox::Failure& f,
                    std::string_view prefix);

// ---- the delivery switch (recipient.cc) and its destinations ----------------------
DelStat deliver_recipient(RequestContext& ctx, MessageAttr attr, UserAttr usr);
// An address found in an alias, .forward or :include: list.
DelStat deliver_resolve_addr(RequestContext& ctx, MessageAttr attr, UserAttr usr,
                            const std::string& address);
// Resubmission through cleanup (forward.cc).
DelStat deliver_indirect(RequestContext& ctx, const MessageAttr& attr);
// alias.cc: true when `name` is an alias (then *status is its outcome).
bool deliver_alias(RequestContext& ctx, MessageAttr attr, UserAttr usr, const std::string& name,
                   DelStat* status);
// A comma-separated destination list (alias value, .forward line, :include: file).
DelStat deliver_token_string(RequestContext& ctx, const MessageAttr& attr, const UserAttr& usr,
                            std::string_view list, int* count);
DelStat deliver_include(RequestContext& ctx, MessageAttr attr, UserAttr usr, const std::string& path);
// dotforward.cc
bool deliver_dotforward(RequestContext& ctx, MessageAttr attr, UserAttr usr, DelStat* status);
// mailbox.cc
bool deliver_mailbox(RequestContext& ctx, MessageAttr attr, UserAttr usr, DelStat* status);
DelStat deliver_maildir(RequestContext& ctx, const MessageAttr& attr, const UserAttr& usr,
                       const std::string& path);
// Hands one recipient to another transport (mailbox_transport, fallback_transport).
DelStat deliver_pass(RequestContext& ctx, const MessageAttr& attr, const std::string& transport);
// file_command.cc
DelStat deliver_file(RequestContext& ctx, const MessageAttr& attr, UserAttr usr, const std::string& path);
DelStat deliver_command(RequestContext& ctx, const MessageAttr& attr, UserAttr usr,
                       const std::string& command);
// unknown users
DelStat deliver_unknown(RequestContext& ctx, MessageAttr attr, UserAttr usr);

// ---- helpers ---------------------------------------------------------------------
// getpwnam() into a UserAttr; false when there is no such user.
bool lookup_user(const std::string& name, UserAttr& out);
// $user, $home, ... as in local_expand(): values outside `filter` become '_'.
// `undefined` (if given) is set when a name had no value or the pattern was malformed.
std::string local_expand(const Settings& cfg, const std::string& pattern,
                         const MessageAttr& attr, const UserAttr& usr, const std::string& filter,
                         bool* undefined = nullptr);
// "user@domain" with @myorigin appended to a bare name (canon_addr_internal).
std::string canonical_address(const Settings& cfg, std::string_view address);

}  // namespace postern::local
