#include "cleanup_settings.h"

#include "util/base/strings.h"
#include "util/log/log.h"

namespace postern::cleanup {
namespace {

unsigned parse_classes(const config::Config& config, std::string_view param) {
    unsigned bits = 0;
    for (const std::string& name : config.get_list(param)) {
        std::string n = lowercase(name);
        if (n == "envelope_sender") bits |= kEnvelopeSender;
        else if (n == "envelope_recipient") bits |= kEnvelopeRecipient;
        else if (n == "header_sender") bits |= kHeaderSender;
        else if (n == "header_recipient") bits |= kHeaderRecipient;
        else log::fatal("%s: unknown address class: %s", std::string(param).c_str(), name.c_str());
    }
    return bits;
}

}  // namespace

MapList MapList::open(const config::Config& config, std::string_view param) {
    MapList list;
    list.title_ = std::string(param);
    for (const std::string& spec : config.get_list(param)) {
        auto t = table::open_table(spec, table::kReadOnly | table::kFoldFix);
        if (!t) log::fatal("%s", t.error().c_str());
        list.tables_.push_back(std::move(*t));
    }
    return list;
}

table::LookupResult MapList::lookup(std::string_view key) const {
    for (const auto& t : tables_) {
        table::LookupResult r = t->lookup(key);
        if (r.status != table::LookupResult::Status::NotFound) {
            if (r.status == table::LookupResult::Status::Error && r.error.empty())
                r.error = t->spec() + ": table lookup problem";
            return r;
        }
    }
    return table::LookupResult::miss();
}

std::unique_ptr<Settings> Settings::load(const config::Config& c) {
    auto s = std::make_unique<Settings>();
    s->myhostname = c.get("myhostname");
    // The Received: header names the mail system as Postern unless main.cf says otherwise.
    if (c.is_set("mail_name")) s->mail_name = c.get("mail_name");
    s->local_domains.push_back(lowercase(c.get("myorigin")));
    for (const std::string& d : c.get_list("mydestination")) s->local_domains.push_back(lowercase(d));
    s->message_size_limit = c.get_int("message_size_limit");
    if (c.get_bool("smtputf8_enable"))
        for (const auto& cls : c.get_list("smtputf8_autodetect_classes"))
            if (lowercase(cls) == "sendmail") s->smtputf8_autodetect_local = true;
    s->header_size_limit = c.get_int("header_size_limit");
    s->hopcount_limit = c.get_int("hopcount_limit");
    s->body_checks_size_limit = c.get_int("body_checks_size_limit");
    s->line_length_limit = c.get_int("line_length_limit");
    s->duplicate_filter_limit = c.get_int("duplicate_filter_limit");
    s->ipc_timeout = c.get_time("ipc_timeout");
    s->always_add_missing_headers = c.get_bool("always_add_missing_headers");
    s->enable_original_recipient = c.get_bool("enable_original_recipient");
    std::string from_format = lowercase(c.get("header_from_format"));
    if (from_format != "standard" && from_format != "obsolete")
        log::fatal("invalid setting: \"header_from_format = %s\"", from_format.c_str());
    s->standard_from_format = from_format == "standard";
    s->undisclosed_recipients_header = c.get("undisclosed_recipients_header");
    s->remote_header_rewrite_domain = c.get("remote_header_rewrite_domain");
    s->recipient_delimiter = c.get("recipient_delimiter");
    s->always_bcc = c.get("always_bcc");
    s->canonical_classes = parse_classes(c, "canonical_classes");
    s->sender_canonical_classes = parse_classes(c, "sender_canonical_classes");
    s->recipient_canonical_classes = parse_classes(c, "recipient_canonical_classes");
    s->masquerade_classes = parse_classes(c, "masquerade_classes");
    for (const std::string& d : c.get_list("masquerade_domains")) s->masquerade_domains.push_back(lowercase(d));
    s->masquerade_exceptions = c.get_list("masquerade_exceptions");
    s->propagate_canonical = s->propagate_virtual = false;
    for (const std::string& p : c.get_list("propagate_unmatched_extensions")) {
        if (iequals(p, "canonical")) s->propagate_canonical = true;
        if (iequals(p, "virtual")) s->propagate_virtual = true;
    }
    s->virtual_limits.recursion = static_cast<size_t>(c.get_int("virtual_alias_recursion_limit"));
    s->virtual_limits.expansion = static_cast<size_t>(c.get_int("virtual_alias_expansion_limit"));
    s->virtual_limits.address_length = static_cast<size_t>(c.get_int("virtual_alias_address_length_limit"));
    s->canonical = MapList::open(c, "canonical_maps");
    s->sender_canonical = MapList::open(c, "sender_canonical_maps");
    s->recipient_canonical = MapList::open(c, "recipient_canonical_maps");
    s->virtual_alias = MapList::open(c, "virtual_alias_maps");
    s->sender_bcc = MapList::open(c, "sender_bcc_maps");
    s->recipient_bcc = MapList::open(c, "recipient_bcc_maps");
    s->header_checks = MapList::open(c, "header_checks");
    s->mime_header_checks = MapList::open(c, "mime_header_checks");
    s->nested_header_checks = MapList::open(c, "nested_header_checks");
    s->mime_processing = !c.get_bool("disable_mime_input_processing");
    s->detect_8bit_encoding_header = c.get_bool("detect_8bit_encoding_header");
    s->strict_mime = c.get_bool("strict_7bit_headers") || c.get_bool("strict_8bitmime") ||
                     c.get_bool("strict_8bitmime_body") || c.get_bool("strict_mime_encoding_domain");
    s->mime_nesting_limit = c.get_int("mime_nesting_limit");
    s->mime_boundary_length_limit = c.get_int("mime_boundary_length_limit");
    s->body_checks = MapList::open(c, "body_checks");
    s->headers = message::HeaderTable(c.get_list("message_drop_headers"));
    return s;
}

bool Settings::is_local_domain(std::string_view domain) const {
    std::string d = lowercase(domain);
    for (const std::string& l : local_domains)
        if (l == d) return true;
    return false;
}

message::AddressMapper Settings::mapper(const MapList& maps, bool propagate) const {
    message::AddressMapper m;
    m.lookup = [&maps](std::string_view key) { return maps.lookup(key); };
    m.is_local_domain = [this](std::string_view d) { return is_local_domain(d); };
    m.delimiters = recipient_delimiter;
    m.propagate = propagate;
    return m;
}

}  // namespace postern::cleanup
