#include "util/ipc/rewrite_client.h"

namespace postern::ipc::mail {

RewriteClient::RewriteClient(const std::string& queue_directory, long timeout_seconds, size_t cache_size)
    : ipc_(queue_directory + "/" + std::string(kRewriteSocket), timeout_seconds),
      cache_size_(cache_size ? cache_size : 1) {
    // Postfix's ipc_idle and ipc_ttl defaults: trivial-rewrite can be replaced (reload,
    // max_use) while its clients live on.
    ipc_.set_idle_limits(5, 1000);
}

template <class V>
const V* RewriteClient::cached(Lru<V>& lru, const std::string& key) {
    auto it = lru.index.find(key);
    if (it == lru.index.end()) return nullptr;
    lru.order.splice(lru.order.begin(), lru.order, it->second);
    return &it->second->second;
}

template <class V>
void RewriteClient::remember(Lru<V>& lru, std::string key, V value) {
    if (auto it = lru.index.find(key); it != lru.index.end()) {
        lru.order.erase(it->second);
        lru.index.erase(it);
    }
    lru.order.emplace_front(key, std::move(value));
    lru.index.emplace(std::move(key), lru.order.begin());
    if (lru.order.size() > cache_size_) {
        lru.index.erase(lru.order.back().first);
        lru.order.pop_back();
    }
}

Result<std::string> RewriteClient::rewrite(std::string_view rule, std::string_view address) {
    std::string key = std::string(rule) + '\0' + std::string(address);
    if (const std::string* hit = cached(rewrites_, key)) return *hit;
    auto reply = ipc_.call(RewriteRequest{std::string(rule), std::string(address)}.to_record());
    if (!reply) return make_error(reply.error());
    auto rw = RewriteReply::from_record(*reply);
    if (!rw) return make_error("trivial-rewrite: " + rw.error());
    if (rw->flags & kResolveFlagError) return make_error("trivial-rewrite: temporary lookup failure");
    remember(rewrites_, std::move(key), rw->address);
    return rw->address;
}

namespace {
Result<ResolveReply> ask(daemon::IpcClient& ipc, std::string_view request, std::string_view sender,
                         std::string_view address) {
    auto reply = ipc.call(ResolveRequest{std::string(request), std::string(sender), std::string(address)}.to_record());
    if (!reply) return make_error(reply.error());
    auto rs = ResolveReply::from_record(*reply);
    if (!rs) return make_error("trivial-rewrite: " + rs.error());
    return rs;
}
}  // namespace

Result<ResolveReply> RewriteClient::resolve(std::string_view sender, std::string_view address) {
    std::string key = std::string(sender) + '\0' + std::string(address);
    if (const ResolveReply* hit = cached(resolves_, key)) return *hit;
    auto rs = ask(ipc_, "resolve", sender, address);
    if (!rs) return rs;
    // Temporary failures are not remembered: the next message asks again.
    if (!(rs->flags & kResolveFlagError)) remember(resolves_, std::move(key), *rs);
    return rs;
}

Result<ResolveReply> RewriteClient::verify(std::string_view sender, std::string_view address) {
    return ask(ipc_, "verify", sender, address);
}

void RewriteClient::clear_cache() {
    rewrites_ = {};
    resolves_ = {};
}

}  // namespace postern::ipc::mail
