// What cleanup(8) reads from main.cf, read once per process: limits, the header and
// address parameters, and every lookup table (canonical, virtual alias, header and body
// checks) opened once here, not per message.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/config/config.h"
#include "util/message/address_map.h"
#include "util/message/header_opts.h"
#include "util/table/table.h"

namespace postern::cleanup {

// A parameter's list of tables, searched in order (Postfix's MAPS).
class MapList {
public:
    MapList() = default;
    // Opens every "type:name" of the parameter's value; a table that cannot be opened is
    // fatal, as in Postfix.
    static MapList open(const config::Config& config, std::string_view param);
    table::LookupResult lookup(std::string_view key) const;
    bool empty() const { return tables_.empty(); }
    const std::string& title() const { return title_; }

private:
    std::string title_;
    std::vector<std::unique_ptr<table::Table>> tables_;
};

// canonical_classes and masquerade_classes bits.
enum AddressClass : unsigned {
    kEnvelopeSender = 1u << 0,
    kEnvelopeRecipient = 1u << 1,
    kHeaderSender = 1u << 2,
    kHeaderRecipient = 1u << 3,
};

struct Settings {
    std::string myhostname;
    std::string mail_name = "Postern";
    std::vector<std::string> local_domains;  // myorigin + mydestination, lower case
    long message_size_limit = 0;
    long header_size_limit = 0;
    long hopcount_limit = 0;
    long body_checks_size_limit = 0;
    long line_length_limit = 0;
    long duplicate_filter_limit = 0;
    long ipc_timeout = 0;
    bool always_add_missing_headers = false;
    bool standard_from_format = true;  // header_from_format = standard
    bool enable_original_recipient = true;
    std::string undisclosed_recipients_header;
    std::string remote_header_rewrite_domain;
    std::string recipient_delimiter;
    std::string always_bcc;
    unsigned canonical_classes = 0, sender_canonical_classes = 0, recipient_canonical_classes = 0;
    unsigned masquerade_classes = 0;
    std::vector<std::string> masquerade_domains, masquerade_exceptions;
    bool propagate_canonical = true, propagate_virtual = true;
    message::ExpansionLimits virtual_limits;

    MapList canonical, sender_canonical, recipient_canonical, virtual_alias;
    MapList sender_bcc, recipient_bcc;
    MapList header_checks, mime_header_checks, nested_header_checks, body_checks;
    // smtputf8_enable with "sendmail" in smtputf8_autodetect_classes: a local submission
    // with non-ASCII addresses or headers is marked as needing SMTPUTF8.
    bool smtputf8_autodetect_local = false;
    bool mime_processing = true;  // !disable_mime_input_processing
    // detect_8bit_encoding_header: Content-Transfer-Encoding 8bit or binary marks the
    // message 8-bit (BODY=8BITMIME on output) whatever the client declared.
    bool detect_8bit_encoding_header = true;
    bool strict_mime = false;     // any strict_7bit_headers, strict_8bitmime*, strict_mime_encoding_domain
    long mime_nesting_limit = 100, mime_boundary_length_limit = 2048;
    message::HeaderTable headers;

    static std::unique_ptr<Settings> load(const config::Config& config);

    bool is_local_domain(std::string_view domain) const;
    // An AddressMapper over one MapList with this process's delimiter and domains.
    message::AddressMapper mapper(const MapList& maps, bool propagate) const;
};

}  // namespace postern::cleanup
