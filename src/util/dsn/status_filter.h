// The last word on a delivery agent's result before it is logged and reported, as
// Postfix's bounce/defer/sent client library has it:
//  - <agent>_delivery_status_filter: tables queried with "D.D.D text"; a result of the
//    same form replaces status and text (a success only by a success, a 4xx/5xx only by
//    a 4xx/5xx, so a filter may turn a deferral into a bounce or back);
//  - soft_bounce: a bounce becomes a deferral (4.x.y, action delayed) with its text,
//    logged as status=SOFTBOUNCE.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/config/config.h"
#include "util/table/table.h"

namespace postern::dsn {

struct FinalStatus {
    std::string status;      // "5.1.1"
    std::string reason;      // the text for the log line and the DSN
    std::string log_status;  // sent, deferred, bounced, SOFTBOUNCE
};

class StatusFilter {
public:
    StatusFilter() = default;
    // `param` names the filter ("smtp_delivery_status_filter"); its tables are opened
    // now (a table that cannot be opened is logged and left out).
    static StatusFilter from_config(const config::Config& config, std::string_view param);

    // status: 2.x.y, 4.x.y or 5.x.y as the delivery came out.
    FinalStatus apply(std::string_view status, std::string_view reason) const;

private:
    std::string param_;
    std::vector<std::shared_ptr<table::Table>> tables_;
    bool soft_bounce_ = false;
};

}  // namespace postern::dsn
