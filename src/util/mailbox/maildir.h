// Maildir delivery (qmail's maildir(5), as Postfix's local(8) writes it): the message is
// written to tmp/ under a name no other delivery can use ("sec.Ppid_Qseq.host"), fsynced,
// hard-linked into new/ under "sec.VdevIinoMusec.host", and the tmp/ name removed; then
// new/ is fsynced so the link survives a crash. Missing tmp/, new/ and cur/ are created.
#pragma once

#include <string>
#include <string_view>

#include "util/mailbox/mail_copy.h"

namespace postern::mailbox {

struct MaildirDelivery {
    std::string dir;       // the maildir, with or without a trailing '/'
    uint64_t limit = 0;    // mailbox_size_limit for the one file (0 = none)
    std::string hostname;  // for the unique name ("" = gethostname())
};

// Writes one message. `new_path` (if given) receives the file's name in new/.
// Failures read as Postfix's: "create /x/tmp/...: Permission denied",
// "link to /x/new/...: ...", "error writing message: File too large".
Outcome deliver_maildir(const MaildirDelivery& where, const CopyAttr& attr,
                        const LineReader& next, std::string* new_path = nullptr);

// The host part of maildir names: '/' and ':' escaped as \057 and \072.
std::string maildir_hostname(std::string_view host);

}  // namespace postern::mailbox
