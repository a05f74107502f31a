// The built-in notification templates of Postfix's bounce(5) (what `postconf -b` prints):
// failure, delay, success and verify, each with its From, Subject, Postmaster-Subject
// and the boiler-plate text with $myhostname, $delay_warning_time_hours and
// $maximal_queue_lifetime_days expanded. bounce_template_file is not supported yet.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace postern::dsn {

enum class NoticeKind { Failure, Delay, Success, Verify };

struct TemplateValues {
    std::string myhostname;
    long delay_warning_time = 0;       // seconds
    long maximal_queue_lifetime = 0;   // seconds
};

struct Template {
    std::string charset = "us-ascii";
    std::string subject;
    std::string postmaster_subject;    // Postmaster copies; "" = same as subject
    std::vector<std::string> text;     // boiler-plate lines, expanded
};

// The default template of `kind` with the values filled in.
Template default_template(NoticeKind kind, const TemplateValues& values);

}  // namespace postern::dsn
