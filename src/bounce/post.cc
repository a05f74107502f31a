// Settings from main.cf and queueing a notice through cleanup.
#include <ctime>
#include <optional>
#include <string_view>
#include <utility>

#include "bounce/bounce.h"
#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/ipc/cleanup_client.h"
#include "util/log/log.h"

namespace postern::bounce {

namespace mail = ipc::mail;

namespace {

// $name in a template: a main.cf parameter; a time parameter also in whole units
// ($delay_warning_time_hours), as Postfix's bounce templates allow.
std::optional<std::string> template_value(const config::Config& config, std::string_view name) {
    static constexpr std::pair<std::string_view, long> kUnits[] = {
        {"_seconds", 1}, {"_minutes", 60}, {"_hours", 3600}, {"_days", 86400}, {"_weeks", 604800}};
    for (const auto& [suffix, unit] : kUnits) {
        if (!name.ends_with(suffix)) continue;
        std::string base(name.substr(0, name.size() - suffix.size()));
        if (!config.raw(base)) continue;
        if (auto t = config.try_get_time(base)) return std::to_string(*t / unit);
    }
    if (!config.raw(name)) return std::nullopt;
    auto value = config.try_get(name);
    return value ? std::optional<std::string>(*value) : std::nullopt;
}

// bounce_template_file, if set; a bad file is fatal, as in Postfix.
dsn::TemplateFile load_templates(const config::Config& config, const dsn::NoticeConfig& n) {
    std::string path = config.get("bounce_template_file");
    if (path.empty()) return {};
    auto text = read_file(path);
    if (!text) log::fatal("open %s: %s", path.c_str(), text.error().c_str());
    auto parsed = dsn::parse_template_file(
        *text, [&config](std::string_view name) { return template_value(config, name); },
        {n.myhostname, n.delay_warning_time, n.maximal_queue_lifetime});
    if (!parsed) log::fatal("%s: %s", path.c_str(), parsed.error().c_str());
    return *parsed;
}

}  // namespace

Settings load_settings(const config::Config& config) {
    Settings s;
    s.queue_directory = config.get("queue_directory");
    s.notice.myhostname = config.get("myhostname");
    s.notice.myorigin = config.get("myorigin");
    s.notice.mail_name = config.get("mail_name");
    s.notice.delay_warning_time = config.get_time("delay_warning_time");
    s.notice.maximal_queue_lifetime = config.get_time("maximal_queue_lifetime");
    s.notice.bounce_size_limit = config.get_int("bounce_size_limit");
    for (const std::string& c : config.get_list("notify_classes")) {
        std::string name = lowercase(c);
        s.notify_bounce |= name == "bounce";
        s.notify_2bounce |= name == "2bounce";
        s.notify_delay |= name == "delay";
    }
    s.bounce_rcpt = config.get("bounce_notice_recipient");
    s.double_bounce_rcpt = config.get("2bounce_notice_recipient");
    s.delay_rcpt = config.get("delay_notice_recipient");
    s.double_bounce_sender = config.get("double_bounce_sender");
    s.ipc_timeout = config.get_time("ipc_timeout");
    s.notice.templates = load_templates(config, s.notice);
    return s;
}

namespace {

// Addresses without a domain get @$myorigin, as cleanup's local rewriting would give
// them ("postmaster", "double-bounce").
std::string qualify(const std::string& address, const Settings& s) {
    if (address.empty() || address.find('@') != std::string::npos) return address;
    return address + "@" + s.notice.myorigin;
}

}  // namespace

Result<std::string> post_notice(const Settings& settings, const std::string& sender,
                                const std::string& recipient, dsn::Notice notice,
                                const dsn::OriginalMessage& original) {
    mail::CleanupClient client(settings.queue_directory, settings.ipc_timeout);
    // Internal mail: canonical/virtual maps and always_bcc, no header/body checks, and
    // no kCleanupBounce: a notice that cannot be queued fails this request instead.
    auto id = client.open(mail::kCleanupBccOk | mail::kCleanupMapOk);
    if (!id) return make_error(id.error());
    notice.to = recipient;
    notice.new_queue_id = *id;
    notice.now = time(nullptr);
    std::string text = dsn::compose_notice(settings.notice, notice, original);

    mail::CleanupEnvelope env;
    env.sender = qualify(sender, settings);
    env.recipients.push_back({qualify(recipient, settings), "", "", 0});
    if (Status st = client.envelope(env); !st) return make_error(st.error());
    if (Status st = client.content(text); !st) return make_error(st.error());
    auto result = client.finish();
    if (!result) return make_error(result.error());
    if (result->status != mail::kCleanupOk)
        return make_error("cleanup: " + (result->reason.empty() ? mail::cleanup_status_text(result->status)
                                                                 : result->reason));
    return result->queue_id.empty() ? *id : result->queue_id;
}

}  // namespace postern::bounce
