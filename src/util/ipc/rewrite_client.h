// Client stub of trivial-rewrite (private/rewrite) with a small positive cache, as
// Postfix's rewrite_clnt/resolve_clnt keep the last answers: cleanup and qmgr ask the same
// questions for every recipient of a busy domain.
#pragma once

#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "util/base/result.h"
#include "util/daemon/ipc_client.h"
#include "util/ipc/mail_proto.h"

namespace postern::ipc::mail {

class RewriteClient {
public:
    RewriteClient(const std::string& queue_directory, long timeout_seconds, size_t cache_size = 1000);

    // rule: "local" or "remote". Errors are temporary (the service is down).
    Result<std::string> rewrite(std::string_view rule, std::string_view address);
    Result<ResolveReply> resolve(std::string_view sender, std::string_view address);
    Result<ResolveReply> verify(std::string_view sender, std::string_view address);
    void clear_cache();

private:
    template <class V>
    struct Lru {
        std::list<std::pair<std::string, V>> order;
        std::unordered_map<std::string, typename std::list<std::pair<std::string, V>>::iterator> index;
    };
    template <class V>
    const V* cached(Lru<V>& lru, const std::string& key);
    template <class V>
    void remember(Lru<V>& lru, std::string key, V value);

    daemon::IpcClient ipc_;
    size_t cache_size_;
    Lru<std::string> rewrites_;
    Lru<ResolveReply> resolves_;
};

}  // namespace postern::ipc::mail
