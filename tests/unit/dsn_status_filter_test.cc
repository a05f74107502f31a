#include <catch2/catch.hpp>

#include "util/config/config.h"
#include "util/dsn/status_filter.h"

using namespace postern;

namespace {

dsn::StatusFilter filter(std::string_view main_cf) {
    auto c = config::Config::from_text(main_cf, "/etc/postern/main.cf", "test");
    REQUIRE(c.ok());
    return dsn::StatusFilter::from_config(*c, "smtp_delivery_status_filter");
}

}  // namespace

TEST_CASE("delivery status filter replaces status and text within the same class") {
    auto f = filter("smtp_delivery_status_filter = pcre:{"
                    "{/^4(\\.\\d+\\.\\d+ TLS is required.*)/ 5$$1}, "
                    "{/^5\\.1\\.1 (.*)/ 4.1.1 retry: $$1}, "
                    "{/^2\\.0\\.0 .*/ 2.6.0 delivered, filtered}, "
                    "{/^5\\.7\\.1 .*/ 2.0.0 success is not a failure}}\n");
    auto a = f.apply("4.7.4", "TLS is required, but was not offered by host x[1.2.3.4]");
    CHECK(a.status == "5.7.4");
    CHECK(a.reason == "TLS is required, but was not offered by host x[1.2.3.4]");
    CHECK(a.log_status == "bounced");
    auto b = f.apply("5.1.1", "host x said: 550 no such user");
    CHECK((b.status == "4.1.1" && b.reason == "retry: host x said: 550 no such user" && b.log_status == "deferred"));
    auto c = f.apply("2.0.0", "250 Ok");
    CHECK((c.status == "2.6.0" && c.reason == "delivered, filtered" && c.log_status == "sent"));
    // A failure may not become a success: the result is ignored (with a warning).
    auto d = f.apply("5.7.1", "denied");
    CHECK((d.status == "5.7.1" && d.reason == "denied" && d.log_status == "bounced"));
    auto e = f.apply("4.4.1", "connect to x: Connection refused");
    CHECK((e.status == "4.4.1" && e.log_status == "deferred"));
}

TEST_CASE("soft_bounce turns a bounce into a deferral that keeps its text") {
    auto f = filter("soft_bounce = yes\n");
    auto a = f.apply("5.1.1", "host x said: 550 5.1.1 unknown");
    CHECK((a.status == "4.1.1" && a.reason == "host x said: 550 5.1.1 unknown" && a.log_status == "SOFTBOUNCE"));
    CHECK(f.apply("2.0.0", "250 Ok").log_status == "sent");
    CHECK(f.apply("4.4.2", "lost").log_status == "deferred");
    // The filter comes first: a deferral made a bounce is then soft-bounced.
    auto g = filter("soft_bounce = yes\nsmtp_delivery_status_filter = inline:{{4.4.2 lost = 5.4.2 lost}}\n");
    auto b = g.apply("4.4.2", "lost");
    CHECK((b.status == "4.4.2" && b.log_status == "SOFTBOUNCE"));
}
