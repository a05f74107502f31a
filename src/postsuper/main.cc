// postsuper(1): options, privileges, the order of the passes and the report, as in
// Postfix: whole-queue work first (so files sit where operations by ID look for them),
// then the operations by queue ID, then one "Deleted: N messages"-style line per
// requested operation.
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cstdlib>

#include "postsuper/postsuper.h"
#include "util/config/config.h"
#include "util/daemon/privileges.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"
#include "util/log/log_config.h"

namespace postern::postsuper {
namespace {

struct Options {
    unsigned action = 0;
    const char* config_dir = nullptr;
    std::vector<std::string> delete_ids, requeue_ids, hold_ids, release_ids, expire_ids,
        expire_release_ids;
    std::vector<std::string> queues;  // operands
};

[[noreturn]] void usage(const char* prog) {
    log::fatal("usage: %s [-c config_dir] [-d queue_id (delete)] [-e queue_id (expire)] "
               "[-f queue_id (expire and/or un-hold)] [-h queue_id (hold)] [-H queue_id "
               "(un-hold)] [-p (purge temporary files)] [-r queue_id (requeue)] [-s "
               "(structure fix)] [-S (redundant structure fix)][-v (verbose)] [queue...]",
               prog);
}

void add_id(Options& o, std::vector<std::string>& ids, unsigned one, unsigned all) {
    ids.emplace_back(optarg);
    o.action |= strcmp(optarg, "ALL") == 0 ? all : one;
}

Options parse_args(int argc, char** argv) {
    Options o;
    int ch;
    while ((ch = getopt(argc, argv, "c:d:e:f:h:H:pr:sSv")) > 0) {
        switch (ch) {
            case 'c':
                if (*optarg != '/') log::fatal("-c requires absolute pathname");
                o.config_dir = optarg;
                break;
            case 'd': add_id(o, o.delete_ids, kDeleteOne, kDeleteAll); break;
            case 'e': add_id(o, o.expire_ids, kExpireOne, kExpireAll); break;
            case 'f':
                add_id(o, o.expire_release_ids, kExpireReleaseOne, kExpireReleaseAll);
                break;
            case 'h': add_id(o, o.hold_ids, kHoldOne, kHoldAll); break;
            case 'H': add_id(o, o.release_ids, kReleaseOne, kReleaseAll); break;
            case 'p': o.action |= kPurge; break;
            case 'r': add_id(o, o.requeue_ids, kRequeueOne, kRequeueAll); break;
            case 's':
            case 'S': o.action |= kStruct; break;
            case 'v': log::set_verbose(log::verbose() + 1); break;
            default: usage(log::program().c_str());
        }
    }
    for (int i = optind; i < argc; ++i) o.queues.emplace_back(argv[i]);
    return o;
}

// Postfix allows only root, and then works as mail_owner so that everything it creates
// belongs to the mail system. Postern also lets mail_owner itself run it (a sandbox
// instance has no root).
void become_mail_owner(const config::Config& cfg) {
    auto owner = daemon::lookup_account(cfg.get("mail_owner"), "mail_owner");
    uid_t uid = getuid();
    if (uid != 0 && (!owner || owner->uid != uid))
        log::fatal("use of this command is reserved for the superuser");
    if (!owner) log::fatal("%s", owner.error().c_str());
    if (Status s = daemon::become_user(*owner); !s) log::fatal("%s", s.error().c_str());
}

// Logs first: their hash level must be right before message files are renamed to
// match inodes (the logs are renamed along). Postfix leaves trace/ out of the default.
const std::vector<std::string> kDefaultQueues = {"defer",    "bounce",   "maildrop", "incoming",
                                                 "active",   "deferred", "hold",     "flush"};
const std::vector<std::string> kHoldQueues = {"incoming", "active", "deferred"};
const std::vector<std::string> kReleaseQueues = {"hold"};

// Which queues the whole-queue pass walks.
const std::vector<std::string>& walk_queues(const Options& o, unsigned action) {
    if (!o.queues.empty()) return o.queues;
    if (action == kHoldAll) return kHoldQueues;
    if (action == kReleaseAll || action == kExpireReleaseAll) return kReleaseQueues;
    return kDefaultQueues;
}

void by_id(Context& ctx, const Options& o, const std::vector<std::string>& ids, Operator op,
           const std::vector<std::string>& defaults, int& counter) {
    const std::vector<std::string>& queues = o.queues.empty() ? defaults : o.queues;
    for (const std::string& id : ids) {
        if (id == "ALL") continue;
        counter += id == "-" ? operate_stream(ctx, op, queues) : op(ctx, queues, id);
    }
}

const char* plural(int n) { return n == 1 ? "" : "s"; }

void report(const Counters& c, unsigned action) {
    if (action & (kRequeueOne | kRequeueAll))
        log::info("Requeued: %d message%s", c.requeued, plural(c.requeued));
    if (action & (kDeleteOne | kDeleteAll))
        log::info("Deleted: %d message%s", c.deleted, plural(c.deleted));
    if (action & (kExpireOne | kExpireAll | kExpireReleaseOne | kExpireReleaseAll))
        log::info("Force-expired: %d message%s", c.expired, plural(c.expired));
    if (action & (kHoldOne | kHoldAll))
        log::info("Placed on hold: %d message%s", c.held, plural(c.held));
    if (action & (kReleaseOne | kReleaseAll | kExpireReleaseOne | kExpireReleaseAll))
        log::info("Released from hold: %d message%s", c.released, plural(c.released));
    if (c.inode_fixed > 0)
        log::info("Renamed to match inode number: %d message%s", c.inode_fixed,
                  plural(c.inode_fixed));
    if (c.inode_mismatch > 0 || c.inode_fixed > 0)
        log::warn("QUEUE FILE NAMES WERE CHANGED TO MATCH INODE NUMBERS");
}

int run(int argc, char** argv) {
    // getopt's own complaints name argv[0]: the base name, as Postfix sets it.
    if (const char* slash = strrchr(argv[0], '/'); slash && slash[1]) argv[0] = const_cast<char*>(slash + 1);
    log::init(argv[0]);
    if (getenv("MAIL_VERBOSE")) log::set_verbose(1);
    Options o = parse_args(argc, argv);
    auto cfg = config::Config::load(config::config_directory(o.config_dir), "postsuper");
    if (!cfg) log::fatal("%s", cfg.error().c_str());
    log::configure_from(*cfg);
    auto layout = queue::Layout::from_config(*cfg);
    if (!layout) log::fatal("%s", layout.error().c_str());
    if (chdir(layout->queue_directory().c_str()) != 0)
        log::fatal("chdir %s: %s", layout->queue_directory().c_str(), strerror(errno));
    become_mail_owner(*cfg);

    Context ctx{*layout, {}};
    unsigned action = o.action ? o.action : (kStruct | kPurge);
    unsigned requested = action;
    const std::vector<std::string>& queues = walk_queues(o, action);
    if (action & ~kByQueueId) super(ctx, queues, action);
    // Names fixed to match inodes carry #FIX until a second pass files them.
    if (ctx.counts.inode_mismatch > 0) super(ctx, queues, action);
    if ((action & kByQueueId) && (ctx.counts.inode_mismatch > 0 || ctx.counts.inode_fixed > 0)) {
        log::error("QUEUE FILE NAMES WERE CHANGED TO MATCH INODE NUMBERS");
        log::fatal("CHECK YOUR QUEUE IDS AND RE-ISSUE THE COMMAND");
    }
    Counters& c = ctx.counts;
    if (action & kDeleteOne) by_id(ctx, o, o.delete_ids, delete_one, kDefaultQueues, c.deleted);
    if (action & kRequeueOne)
        by_id(ctx, o, o.requeue_ids, requeue_one, kDefaultQueues, c.requeued);
    if (action & kHoldOne) by_id(ctx, o, o.hold_ids, hold_one, kHoldQueues, c.held);
    if (action & kReleaseOne) by_id(ctx, o, o.release_ids, release_one, kReleaseQueues, c.released);
    if (action & kExpireOne) by_id(ctx, o, o.expire_ids, expire_one, kDefaultQueues, c.expired);
    if (action & kExpireReleaseOne)
        by_id(ctx, o, o.expire_release_ids, expire_release_one, kDefaultQueues, c.expired);
    report(c, requested);
    // Requeued mail need not wait for pickup's next scan (Postfix leaves it waiting);
    // a pickup that is down finds the files when it starts.
    if (c.requeued > 0) {
        const char wakeup[] = {ipc::mail::kTriggerWakeup};
        (void)ipc::mail::send_trigger(layout->queue_directory(), ipc::mail::kPickupSocket,
                                      std::string_view(wakeup, 1), 2);
    }
    return 0;
}

}  // namespace
}  // namespace postern::postsuper

int main(int argc, char** argv) { return postern::postsuper::run(argc, argv); }
