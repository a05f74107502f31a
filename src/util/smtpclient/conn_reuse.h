// The pure rules of the SMTP client's connection cache (smtp/connection_cache.h): which
// requests share a connection and how long and how often one serves.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace postern::smtpclient {

// Postfix's THIS_SESSION_IS_EXPIRED, negated: a connection may serve again while its
// reuse time limit has not passed and it was reused fewer than `count_limit` times
// (0: no limit). `expire_at` is the connect time plus smtp_connection_reuse_time_limit.
bool may_reuse(int reuse_count, time_t expire_at, time_t now, long count_limit);

// The cache key of a request: its next hop as the request names it, in lower case
// ("[relay.example]:587", "example.com"). The TLS policy is chosen by the next hop;
// `sender` is the envelope sender when the SASL credentials depend on it
// (smtp_sender_dependent_authentication), else empty: one key, one policy and login.
std::string cache_key(std::string_view nexthop, std::string_view sender = {});

// The name smtp_connection_cache_destinations lists: the next hop's host without [] and
// port ("relay.example" for "[Relay.Example]:587"), or the socket path (LMTP).
std::string cache_destination_name(std::string_view nexthop, bool lmtp);

}  // namespace postern::smtpclient
