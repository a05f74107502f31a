// error(8): the delivery agent that fails every recipient of a request, with the
// next-hop text as the reason ("5.1.1 User unknown in virtual alias table"; a missing or
// wrong-class code becomes 5.0.0). Run under the service name "retry" it defers them
// instead (4.0.0 by default), as Postfix's error(8) does. qmgr turns the replies into
// bounce or defer log entries; this agent only logs and answers.
#include "util/dsn/uniform_verdict.h"

int main(int argc, char** argv) {
    using namespace postern;
    return dsn::run_uniform_agent(argc, argv, [](const ipc::mail::DeliveryRequest& req, const std::string& service) {
        return dsn::verdict_from_nexthop(req.nexthop, service == "retry" ? "4.0.0" : "5.0.0");
    });
}
