// The queue manager: moves mail from incoming/ and (when its retry time has come)
// deferred/ into active/, asks trivial-rewrite where each recipient goes, hands batches
// of recipients to delivery agents over kept connections, and settles each message when
// its last delivery is over: removed, bounced, or back to deferred/ with a backoff.
//
// Durability: a file leaves active/ only by unlink (every recipient has an outcome and
// the bounce service holds any notification) or by rename to deferred/ after the
// finished recipients are marked done with one fsync. A crash leaves files in active/,
// which the next start moves back to incoming/: nothing is lost, and a recipient is
// delivered twice only if the crash came between the agent's success and the mark.
#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qmgr/agent_conn.h"
#include "qmgr/message.h"
#include "qmgr/scheduler.h"
#include "qmgr/settings.h"
#include "util/base/unique_fd.h"
#include "util/daemon/ipc_client.h"
#include "util/daemon/server.h"
#include "util/daemon/worker_thread.h"
#include "util/ipc/rewrite_client.h"
#include "util/queue/queue_layout.h"

struct event;

namespace postern::qmgr {

struct TransportState {
    explicit TransportState(TransportQueue q) : queue(std::move(q)) {}
    TransportQueue queue;
    std::vector<std::unique_ptr<AgentConnection>> idle;
    std::unordered_map<AgentConnection*, std::unique_ptr<AgentConnection>> busy;
    // Per busy connection: the destination of its running job and the job sent ahead
    // behind it, if any (TransportQueue::ahead).
    struct Running {
        Destination* destination = nullptr;
        std::shared_ptr<Job> ahead;
    };
    std::unordered_map<AgentConnection*, Running> running;
    time_t dead_until = 0;  // connect failed: defer its mail until then
    long busy_until_ms = 0;  // all agents busy (listen queue full): wait until then
};

class Qmgr {
public:
    Qmgr(daemon::ServerContext& ctx, Settings settings, queue::Layout layout);
    ~Qmgr();

    // Requeues what a previous run left in active/, then looks at the queues.
    void start();
    void on_trigger(std::string_view bytes);
    // Between loop iterations: frees connections that were closed during the last one.
    void on_loop() { retired_.clear(); }
    // At exit: starts nothing new and waits up to `seconds` for the replies of running
    // deliveries, so that a stop or reload does not deliver those recipients twice.
    void drain(long seconds);

private:
    // queue_scan.cc
    void recover_active();
    void request_scan(bool incoming, bool deferred, bool ignore_time);
    void run_scans();
    void start_feed(std::string_view queue, bool ignore_time);
    void feed();
    void activate(std::string_view queue, const std::string& id, bool ignore_time);
    void quarantine(const std::string& id);

    // dispatch.cc
    void route(ActiveMessage& msg);
    void queue_jobs(ActiveMessage& msg, const std::string& transport, const std::string& key,
                    const std::string& nexthop, const std::vector<size_t>& rcpts);
    void dispatch();
    void dispatch(TransportState& ts);
    bool start_job(TransportState& ts, Job job);
    void send_job(TransportState& ts, AgentConnection* conn, std::shared_ptr<Job> job);
    void send_ahead(TransportState& ts, AgentConnection* conn);
    void job_done(TransportState& ts, Job job, AgentConnection* conn,
                  Result<ipc::mail::DeliveryReply> reply);
    void apply_reply(Job& job, const ipc::mail::DeliveryReply& reply);
    void transport_failed(TransportState& ts, Job job, const std::string& why);
    void retire(TransportState& ts, AgentConnection* conn);
    void sweep_idle();
    TransportState& transport(const std::string& name);
    void job_settled(ActiveMessage& msg);
    // An outcome qmgr decides itself (no agent saw the recipient): logged here.
    void settle(ActiveMessage& msg, size_t file_index, std::string_view dsn, std::string_view reason);

    // message_done.cc
    void finish(ActiveMessage& msg);
    bool write_logs(ActiveMessage& msg);
    bool bounce_call(ActiveMessage& msg, ipc::mail::BounceCommand command);
    bool log_exists(std::string_view log_queue, const std::string& id) const;
    int open_active(ActiveMessage& msg, UniqueFd& fd);
    void keep_deferred(ActiveMessage& msg, int fd, bool sync_bounce_log, bool logs_written);
    void remove_message(ActiveMessage& msg);

    daemon::ServerContext& ctx_;
    Settings settings_;
    queue::Layout layout_;
    ipc::mail::RewriteClient rewrite_;
    daemon::IpcClient bounce_;
    std::unordered_map<std::string, std::unique_ptr<ActiveMessage>> messages_;
    std::unordered_map<std::string, std::unique_ptr<TransportState>> transports_;
    std::vector<std::unique_ptr<AgentConnection>> retired_;
    // The queues being moved into active/: a few files per loop turn, so that deliveries
    // start (and replies are read) while a long queue is still being looked at.
    struct Feed {
        std::string_view queue;
        bool ignore_time = false;
        std::vector<std::string> ids;
        size_t next = 0;
    };
    std::vector<Feed> feeds_;
    event* scan_event_ = nullptr;
    event* feed_event_ = nullptr;
    event* housekeeping_event_ = nullptr;
    bool scan_incoming_ = false, scan_deferred_ = false, ignore_time_ = false;
    bool scan_blocked_ = false;  // the active queue was full during the last scan
    bool stopping_ = false;
    // Unlinks finished queue files off the loop: on ext4 freeing a file's blocks takes
    // milliseconds, which would hold up every reply and handoff behind it. Declared last:
    // it goes first, after the destructor has drained it.
    std::unique_ptr<daemon::WorkerThread> remover_;
};

}  // namespace postern::qmgr
