// local(8)'s main.cf parameters, read once per process (a process lives for max_use
// requests, so a changed main.cf takes effect soon, as in Postfix).
#include <cstdlib>

#include "local/local.h"
#include "util/base/strings.h"
#include "util/daemon/privileges.h"
#include "util/log/log.h"
#include "util/mailbox/user_ids.h"

namespace postern::local {

namespace {

// Postfix's name_mask(): a list of known names into bits; anything else is fatal.
unsigned name_mask(const config::Config& config, std::string_view param,
                   std::initializer_list<std::pair<const char*, unsigned>> names) {
    unsigned mask = 0;
    std::string value = config.get(param);
    for (const auto& word : config.get_list(param)) {
        bool known = false;
        for (const auto& [name, bit] : names)
            if (iequals(word, name)) mask |= bit, known = true;
        if (!known)
            log::fatal("unknown %.*s value \"%s\" in \"%s\"", static_cast<int>(param.size()),
                       param.data(), word.c_str(), value.c_str());
    }
    return mask;
}

}  // namespace

Settings load_settings(const config::Config& config) {
    Settings s;
    s.config = &config;
    s.queue_directory = config.get("queue_directory");
    s.myorigin = config.get("myorigin");
    s.myhostname = config.get("myhostname");
    for (const auto& d : config.get_list("mydestination"))
        if (d.find_first_of(":/") == std::string::npos) s.mydestination.push_back(lowercase(d));
    s.recipient_delimiter = config.get("recipient_delimiter");
    s.alias_maps = config.get_list("alias_maps");
    s.forward_path = config.raw("forward_path").value_or("");
    s.mailbox_transport = config.get("mailbox_transport");
    s.fallback_transport = config.get("fallback_transport");
    s.mailbox_transport_maps = config.get("mailbox_transport_maps");
    s.fallback_transport_maps = config.get("fallback_transport_maps");
    s.mailbox_command_maps = config.get("mailbox_command_maps");
    s.mailbox_command = config.raw("mailbox_command").value_or("");
    s.home_mailbox = config.get("home_mailbox");
    s.mail_spool_directory = config.get("mail_spool_directory");
    s.luser_relay = config.raw("luser_relay").value_or("");
    s.command_execution_directory = config.raw("command_execution_directory").value_or("");
    s.local_command_shell = config.get("local_command_shell");
    s.forward_filter = config.get("forward_expansion_filter");
    s.command_filter = config.get("command_expansion_filter");
    s.exec_dir_filter = config.get("execution_directory_expansion_filter");
    s.export_environment = config.get_list("export_environment");
    s.allow_commands = name_mask(config, "allow_mail_to_commands",
                                 {{"alias", kExpandAlias}, {"forward", kExpandForward}, {"include", kExpandInclude}});
    s.allow_files = name_mask(config, "allow_mail_to_files",
                              {{"alias", kExpandAlias}, {"forward", kExpandForward}, {"include", kExpandInclude}});
    s.delivered_header = name_mask(config, "prepend_delivered_header",
                                   {{"command", kHdrCommand}, {"file", kHdrFile}, {"forward", kHdrForward}});
    auto locks = mailbox::parse_lock_methods(config.get_list("mailbox_delivery_lock"));
    if (!locks) log::fatal("%s", locks.error().c_str());
    s.lock.methods = *locks;
    s.lock.attempts = static_cast<int>(config.get_int("deliver_lock_attempts"));
    s.lock.delay_ms = config.get_time("deliver_lock_delay") * 1000;
    s.lock.stale_seconds = config.get_time("stale_lock_time");
    s.mailbox_size_limit = config.get_int("mailbox_size_limit");
    long message_limit = config.get_int("message_size_limit");
    if (s.mailbox_size_limit && message_limit > s.mailbox_size_limit)
        log::fatal("main.cf configuration error: mailbox_size_limit is smaller than message_size_limit");
    s.command_time_limit = config.get_time("command_time_limit");
    s.duplicate_filter_limit = config.get_int("duplicate_filter_limit");
    s.ipc_timeout = config.get_time("ipc_timeout");
    s.delay_max_digits = static_cast<int>(config.get_int("delay_logging_resolution_limit"));
    s.owner_request_special = config.get_bool("owner_request_special");
    s.expand_owner_alias = config.get_bool("expand_owner_alias");
    s.reset_owner_alias = config.get_bool("reset_owner_alias");
    s.strict_mailbox_ownership = config.get_bool("strict_mailbox_ownership");
    s.biff = config.get_bool("biff");
    s.require_home_directory = config.get_bool("require_home_directory");
    s.enable_original_recipient = config.get_bool("enable_original_recipient");
    s.default_privs = config.get("default_privs");
    if (mailbox::can_switch_ids()) {
        auto owner = daemon::lookup_account(config.get("mail_owner"), "mail_owner");
        if (!owner) log::fatal("%s", owner.error().c_str());
        s.owner_uid = owner->uid, s.owner_gid = owner->gid;
    } else {
        s.owner_uid = ::geteuid(), s.owner_gid = ::getegid();
    }
    return s;
}

}  // namespace postern::local
