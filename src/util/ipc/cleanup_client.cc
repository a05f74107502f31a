#include "util/ipc/cleanup_client.h"

namespace postern::ipc::mail {
namespace {
constexpr size_t kChunk = 64 * 1024;
}  // namespace

CleanupClient::CleanupClient(const std::string& queue_directory, long timeout_seconds)
    : ipc_(queue_directory + "/" + std::string(kCleanupSocket), timeout_seconds) {}

Result<std::string> CleanupClient::open(long flags) {
    pending_.clear();
    // A fresh connection per message keeps a failed message from poisoning the next.
    ipc_.disconnect();
    auto reply = ipc_.call(CleanupOpen{flags}.to_record());
    if (!reply) return make_error(reply.error());
    auto opened = CleanupOpened::from_record(*reply);
    if (!opened) return make_error("cleanup: " + opened.error());
    if (opened->status != kCleanupOk) return make_error("cleanup: " + cleanup_status_text(opened->status));
    return opened->queue_id;
}

Status CleanupClient::envelope(const CleanupEnvelope& env) { return ipc_.send(env.to_record()); }

Status CleanupClient::flush_content() {
    if (pending_.empty()) return {};
    CleanupContent chunk;
    chunk.data.swap(pending_);
    return ipc_.send(chunk.to_record());
}

Status CleanupClient::content(std::string_view data) {
    while (!data.empty()) {
        size_t take = std::min(data.size(), kChunk - pending_.size());
        pending_.append(data.substr(0, take));
        data.remove_prefix(take);
        if (pending_.size() >= kChunk) {
            if (Status st = flush_content(); !st) return st;
        }
    }
    return {};
}

Result<CleanupResult> CleanupClient::finish() {
    if (Status st = flush_content(); !st) return make_error(st.error());
    if (Status st = ipc_.send(CleanupEnd{}.to_record()); !st) return make_error(st.error());
    auto reply = ipc_.receive();
    if (!reply) return make_error(reply.error());
    auto result = CleanupResult::from_record(*reply);
    if (!result) return make_error("cleanup: " + result.error());
    return result;
}

Result<CleanupResult> submit_message(const std::string& queue_directory, long timeout_seconds,
                                     long flags, const CleanupEnvelope& env,
                                     std::string_view message) {
    CleanupClient client(queue_directory, timeout_seconds);
    auto id = client.open(flags);
    if (!id) return make_error(id.error());
    if (Status st = client.envelope(env); !st) return make_error(st.error());
    if (Status st = client.content(message); !st) return make_error(st.error());
    return client.finish();
}

}  // namespace postern::ipc::mail
