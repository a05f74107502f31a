// discard(8): the delivery agent that reports every recipient of a request as delivered
// without delivering anything, with the next-hop text as the reason ("status=sent
// (example.com)"), as Postfix's discard(8). A next-hop that starts with a 2.x.x code sets
// the status; any other code is ignored (2.0.0).
#include "util/dsn/uniform_verdict.h"

int main(int argc, char** argv) {
    using namespace postern;
    return dsn::run_uniform_agent(argc, argv, [](const ipc::mail::DeliveryRequest& req, const std::string&) {
        return dsn::verdict_from_nexthop(req.nexthop, "2.0.0");
    });
}
