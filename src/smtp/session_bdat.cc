// The BDAT side of Session (RFC 3030 CHUNKING), used instead of DATA when
// smtp_chunking_enable (lmtp_chunking_enable) is on and the server offers CHUNKING. The
// chunks come from util/smtpclient/bdat_framer.h: the DATA phase's lines, unstuffed.
// Each BDAT is a Pending command whose reply comes in order with the others; with
// PIPELINING the chunks are written as fast as the socket takes them, without it each
// one waits for the reply to the one before. A refused chunk that is not the last
// fails the transaction (RFC 3030 4.2: no more chunks, the server's state is
// indeterminate), so the connection is closed rather than cached.
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "smtp/session.h"
#include "util/log/log.h"

namespace postern::smtp {

namespace {

// Larger than DATA's pieces, since without PIPELINING each chunk costs a round trip;
// a message up to this size is pipelined with MAIL and RCPT.
constexpr size_t kBdatChunk = 128 * 1024;

constexpr const char* kEndOfDataWait = "sending end of data -- message may be sent more than once";

}  // namespace

void Session::prepare_bdat() {
    if (!settings_.chunking || !features_.chunking) return;
    bdat_ = std::make_unique<smtpclient::BdatFramer>(
        env_.content_fd, smtpclient::WireOptions{settings_.line_limit, false}, kBdatChunk, mime_downgrade());
}

// A chunk that cannot be sent ends the session before the LAST one: only whole chunks
// went out, so the server keeps nothing.
bool Session::content_ok(const Result<bool>& read) {
    if (!read) {
        log::warn("%s: %s", settings_.lmtp ? "lmtp" : "smtp", read.error().c_str());
        fail_session(false, "4.3.0", "unreadable mail queue entry");
        return false;
    }
    if (bdat_->mime_nesting_exceeded()) {
        // As with DATA: the conversion cannot be trusted.
        fail_session(false, "5.6.0", "MIME nesting exceeds safety limit");
        return false;
    }
    return true;
}

// The whole transaction in one round trip when the message is small. A server that
// refuses every recipient reads and discards the chunk (RFC 3030 4.2).
bool Session::pipeline_whole_message() {
    auto fits = bdat_->rest_fits_in_one_chunk();
    std::string frame;
    auto last = fits && *fits ? bdat_->next(frame) : fits;
    if (!content_ok(last)) return false;
    if (!*last) return true;  // chunks follow once every RCPT reply is in
    bufferevent_write(bev_, frame.data(), frame.size());
    pending_.push_back({Cmd::Bdat, 0, true});
    bdat_last_sent_ = true;
    return true;
}

// After a RCPT reply: the next one, or the reply to the pipelined LAST chunk.
void Session::arm_after_rcpt_bdat() {
    if (!pending_.empty() && pending_.front().cmd == Cmd::Bdat)
        arm(settings_.data_done_timeout, kEndOfDataWait);
    else if (!pending_.empty() || !unsent_.empty())
        arm(settings_.rcpt_timeout, "sending RCPT TO");
}

void Session::start_bdat_body() {
    if (accepted_.empty()) {
        // As with DATA: no content when the server took no recipient.
        send_quit();
        finish();
        return;
    }
    phase_ = Phase::Body;
    send_bdat_chunk();
}

// Called again whenever the output buffer has drained and after each chunk's reply: at
// most about two chunks of the message are in memory at a time.
void Session::send_bdat_chunk() {
    evbuffer* out = bufferevent_get_output(bev_);
    if (bdat_last_sent_) {
        // The LAST chunk has left: from now on the wait is for the final reply.
        if (phase_ == Phase::Body && evbuffer_get_length(out) == 0) {
            phase_ = Phase::EndOfData;
            arm(settings_.data_done_timeout, kEndOfDataWait);
        }
        return;
    }
    if (evbuffer_get_length(out) >= kBdatChunk) return;
    if (!features_.pipelining && !pending_.empty()) return;
    std::string frame;
    frame.reserve(kBdatChunk + 32);
    auto last = bdat_->next(frame);
    if (!content_ok(last)) return;
    bufferevent_write(bev_, frame.data(), frame.size());
    pending_.push_back({Cmd::Bdat, 0, *last});
    bdat_last_sent_ = *last;
    arm(settings_.data_xfer_timeout, "sending message body");
}

void Session::on_bdat_reply(const smtpclient::Reply& reply, bool last) {
    if (accepted_.empty()) {
        // The pipelined LAST chunk after every recipient was refused.
        send_quit();
        finish();
        return;
    }
    if (last) {
        phase_ = Phase::EndOfData;
        on_end_of_data(reply);  // as for the final dot, LMTP's per-recipient replies too
        return;
    }
    if (reply.code / 100 == 2) {
        send_bdat_chunk();
        return;
    }
    std::string dsn = reply.cls() == '4' || reply.cls() == '5' ? reply.dsn() : "5.5.0";
    for (size_t i : accepted_) report_.rcpts[i] = {dsn, said(reply, "BDAT")};
    send_quit();
    finish();
}

}  // namespace postern::smtp
