#include "util/smtpclient/conn_reuse.h"

#include "util/base/strings.h"
#include "util/smtpclient/nexthop.h"

namespace postern::smtpclient {

bool may_reuse(int reuse_count, time_t expire_at, time_t now, long count_limit) {
    if (now >= expire_at) return false;
    return count_limit <= 0 || reuse_count < count_limit;
}

std::string cache_key(std::string_view nexthop, std::string_view sender) {
    std::string key = lowercase(nexthop);
    if (!sender.empty()) key.append(1, '\n').append(sender);
    return key;
}

std::string cache_destination_name(std::string_view nexthop, bool lmtp) {
    auto hop = parse_nexthop(nexthop, lmtp);
    if (!hop) return lowercase(nexthop);
    return lowercase(hop->kind == NextHop::Kind::Unix ? hop->path : hop->host);
}

}  // namespace postern::smtpclient
