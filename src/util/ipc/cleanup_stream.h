// The cleanup client for event-driven daemons (smtpd): the same record sequence as
// cleanup_client.h (open, envelope, content, end; see mail_proto.h), but nothing blocks.
// Requests are queued on a libevent bufferevent; the two replies (the queue ID after
// open, the result after end -- sent by cleanup only after its fsync) arrive through
// callbacks. Many sessions of one process can thus wait for cleanup's group commit at
// the same time.
//
// Flow control: content() only queues; a caller that streams a large message checks
// backlog() and waits for on_drain before it reads more from its own client.
//
// Lifetime: destroying the stream closes the connection (cleanup then discards the
// unfinished queue file); no callback runs after that, and a callback may destroy the
// stream it was called from.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "util/base/result.h"
#include "util/ipc/attr.h"
#include "util/ipc/mail_proto.h"

struct event_base;
struct bufferevent;

namespace postern::ipc::mail {

class CleanupStream {
public:
    using OpenedFn = std::function<void(Result<std::string>)>;  // the queue ID
    using ResultFn = std::function<void(Result<CleanupResult>)>;

    // socket_path: usually queue_directory + "/public/cleanup". timeout_seconds bounds
    // each wait for a reply.
    CleanupStream(event_base* base, std::string socket_path, long timeout_seconds);
    ~CleanupStream();
    CleanupStream(const CleanupStream&) = delete;
    CleanupStream& operator=(const CleanupStream&) = delete;

    // Connects and sends the open request; done gets the queue ID or an error.
    void open(long flags, OpenedFn done);
    void envelope(const CleanupEnvelope& env);
    // Message bytes, LF line ends, any split (sent in records of up to 64 KiB).
    void content(std::string_view data);
    // Ends the message; done gets cleanup's result (or an error: lost connection, timeout).
    // late_flags: CleanupEnd::late_flags (hold or discard decided after the open).
    void finish(ResultFn done, long late_flags = 0);

    // Bytes queued for cleanup and not yet written to the socket.
    size_t backlog() const;
    // Called (once per set) when the socket has taken everything written so far (a
    // partial chunk may still wait in pending_ for more content).
    void on_drain(std::function<void()> fn) { drain_ = std::move(fn); }
    // The connection broke; every later request is ignored and finish() reports it.
    bool failed() const { return !error_.empty(); }

private:
    static void read_cb(bufferevent* bev, void* arg);
    static void write_cb(bufferevent* bev, void* arg);
    static void event_cb(bufferevent* bev, short what, void* arg);
    void flush_content();
    void send(const AttrRecord& rec);
    void fail(std::string error);
    void expect_reply(bool on);

    event_base* base_;
    std::string path_;
    long timeout_;
    bufferevent* bev_ = nullptr;
    AttrDecoder decoder_;
    std::string pending_;
    std::string error_;
    OpenedFn opened_;
    ResultFn result_;
    std::function<void()> drain_;
    // Cleared by the destructor: a callback that destroyed us must not touch members.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace postern::ipc::mail
