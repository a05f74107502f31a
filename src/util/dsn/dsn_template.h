// The notification templates of Postfix's bounce(5): the built-in ones (what `postconf
// -b` prints) and those of a bounce_template_file. A template has a Charset, From,
// Subject and Postmaster-Subject header and the boiler-plate text, with $name
// references to main.cf parameters expanded (time parameters also as $name_seconds,
// _minutes, _hours, _days, _weeks).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::dsn {

enum class NoticeKind { Failure, Delay, Success, Verify };

struct TemplateValues {
    std::string myhostname;
    long delay_warning_time = 0;       // seconds
    long maximal_queue_lifetime = 0;   // seconds
};

struct Template {
    std::string charset = "us-ascii";
    std::string from;                  // "" = MAILER-DAEMON@$myorigin (Mail Delivery System)
    std::string subject;
    std::string postmaster_subject;    // Postmaster copies; "" = same as subject
    std::vector<std::string> text;     // boiler-plate lines, expanded
};

// The default template of `kind` with the values filled in.
Template default_template(NoticeKind kind, const TemplateValues& values);

// The value of a $name reference in a template file; nullopt = no such parameter.
using TemplateLookup = std::function<std::optional<std::string>(std::string_view name)>;

// The templates a bounce_template_file defines ("failure_template = <<EOF ... EOF",
// likewise delay_, success_, verify_template), expanded; those it leaves out keep the
// built-in text. Errors name the line, as Postfix's fatal messages do.
struct TemplateFile {
    std::optional<Template> failure, delay, success, verify;
    const std::optional<Template>& of(NoticeKind kind) const;
};
Result<TemplateFile> parse_template_file(std::string_view text, const TemplateLookup& lookup,
                                         const TemplateValues& defaults);

}  // namespace postern::dsn
